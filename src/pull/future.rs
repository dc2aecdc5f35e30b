use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use super::PullBody;

type LoadFuture = Pin<Box<dyn Future<Output = Response<Bytes>> + Send>>;

/// What a second poll after completion panics with: a caller bug, made loud rather than
/// a silent hang.
const POLLED_AFTER_COMPLETION: &str = "`ResponseFuture` polled after completion";

pin_project! {
    /// The response future of [`Pull`](super::Pull).
    ///
    /// Polling it again after it completed is a bug in the caller, and panics.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: Stage<F, B>,
    }
}

pin_project! {
    #[project = StageProj]
    enum Stage<F, B> {
        // Not ours: the inner service's future.
        Inner { #[pin] future: F },
        // Rejected before the source was asked.
        Ready { response: Option<Response<PullBody<B>>> },
        // Waiting for the profile source.
        Load { future: LoadFuture },
        // The response was handed out.
        Done,
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            state: Stage::Inner { future },
        }
    }

    pub(crate) fn ready(response: Response<Bytes>) -> Self {
        Self {
            state: Stage::Ready {
                response: Some(response.map(PullBody::full)),
            },
        }
    }

    pub(crate) fn load(future: impl Future<Output = Response<Bytes>> + Send + 'static) -> Self {
        Self {
            state: Stage::Load {
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
        let mut state = self.project().state;
        let output = match state.as_mut().project() {
            StageProj::Inner { future } => match future.poll(cx) {
                Poll::Ready(result) => result.map(|response| response.map(PullBody::inner)),
                Poll::Pending => return Poll::Pending,
            },
            StageProj::Ready { response } => match response.take() {
                Some(response) => Ok(response),
                None => panic!("{POLLED_AFTER_COMPLETION}"),
            },
            StageProj::Load { future } => match future.as_mut().poll(cx) {
                Poll::Ready(response) => Ok(response.map(PullBody::full)),
                Poll::Pending => return Poll::Pending,
            },
            StageProj::Done => panic!("{POLLED_AFTER_COMPLETION}"),
        };
        state.set(Stage::Done);
        Poll::Ready(output)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Ready, ready};
    use std::task::Waker;

    use super::*;

    type TestFuture = ResponseFuture<Ready<Result<Response<()>, Infallible>>, ()>;

    /// Polls `future` to completion, then once more.
    fn poll_twice(future: TestFuture) {
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_ready());
        let _ = future.as_mut().poll(&mut cx);
    }

    #[test]
    #[should_panic(expected = "`ResponseFuture` polled after completion")]
    fn a_ready_response_polled_again_panics() {
        poll_twice(TestFuture::ready(Response::new(Bytes::new())));
    }

    #[test]
    #[should_panic(expected = "`ResponseFuture` polled after completion")]
    fn a_loaded_response_polled_again_panics() {
        poll_twice(TestFuture::load(async { Response::new(Bytes::new()) }));
    }

    #[test]
    #[should_panic(expected = "`ResponseFuture` polled after completion")]
    fn an_inner_response_polled_again_panics() {
        // `Ready` would panic on its own when polled again, with another message.
        poll_twice(TestFuture::inner(ready(Ok(Response::new(())))));
    }
}
