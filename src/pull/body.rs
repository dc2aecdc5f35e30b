use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::BoxError;

pin_project! {
    /// The response body of [`Pull`](super::Pull): the endpoint's own bytes, or the inner
    /// service's body untouched.
    pub struct PullBody<B> {
        #[pin]
        kind: Origin<B>,
    }
}

pin_project! {
    #[project = OriginProj]
    enum Origin<B> {
        // A response of the Pull endpoint: the bytes not yet sent.
        Pull { data: Option<Bytes> },
        // A response of the inner service.
        Inner { #[pin] body: B },
    }
}

impl<B> PullBody<B> {
    pub(crate) fn full(data: Bytes) -> Self {
        Self {
            kind: Origin::Pull {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    pub(crate) fn inner(body: B) -> Self {
        Self {
            kind: Origin::Inner { body },
        }
    }
}

impl<B> Body for PullBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            OriginProj::Pull { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            OriginProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Origin::Pull { data } => data.is_none(),
            Origin::Inner { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Origin::Pull { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Origin::Inner { body } => body.size_hint(),
        }
    }
}

impl<B> std::fmt::Debug for PullBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Origin::Pull { data } => f
                .debug_struct("PullBody")
                .field("remaining", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Origin::Inner { .. } => f.debug_struct("PullBody").field("inner", &"..").finish(),
        }
    }
}
