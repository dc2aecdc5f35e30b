use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use super::PullBody;

type LoadFuture = Pin<Box<dyn Future<Output = Response<Bytes>> + Send>>;

pin_project! {
    /// The response future of [`Pull`](super::Pull).
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        // Not ours: the inner service's future.
        Inner { #[pin] future: F },
        // Rejected before the source was asked.
        Ready { response: Option<Response<PullBody<B>>> },
        // Waiting for the profile source.
        Load { future: LoadFuture },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(crate) fn ready(response: Response<Bytes>) -> Self {
        Self {
            state: State::Ready {
                response: Some(response.map(PullBody::full)),
            },
        }
    }

    pub(crate) fn load(future: impl Future<Output = Response<Bytes>> + Send + 'static) -> Self {
        Self {
            state: State::Load {
                future: Box::pin(future),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<PullBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future } => future
                .poll(cx)
                .map(|result| result.map(|response| response.map(PullBody::inner))),
            StateProj::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after completion: a caller bug, answered without panicking.
                None => Poll::Pending,
            },
            StateProj::Load { future } => future
                .as_mut()
                .poll(cx)
                .map(|response| Ok(response.map(PullBody::full))),
        }
    }
}
