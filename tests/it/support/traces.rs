//! A `tracing` layer that keeps every span (name, target, fields as recorded, later
//! `record` calls included) and every event, for tests of what pingpull traces and logs.
//! Install it for one thread with [`Traces::install`] (a current-thread runtime keeps every
//! task on that thread).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// A subscriber that wants nothing yet keeps every callsite's interest at "sometimes".
/// tracing caches one interest per callsite for the whole process, computed (while a
/// single dispatcher exists) from whichever thread reaches the callsite first: a sibling
/// test without a subscriber would make it "never", and this thread's subscriber would
/// then see nothing. With this one alive too, interest is asked of every dispatcher.
struct Anchor;

impl Subscriber for Anchor {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

static ANCHOR: OnceLock<Dispatch> = OnceLock::new();

/// Installs `subscriber` for this thread until the guard drops, so that it sees every
/// callsite whatever other test threads did first.
pub(crate) fn install_for_this_thread(
    subscriber: impl Subscriber + Send + Sync + 'static,
) -> tracing::subscriber::DefaultGuard {
    ANCHOR.get_or_init(|| Dispatch::new(Anchor));
    let guard = tracing::subscriber::set_default(subscriber);
    // Callsites cached as "never" before the anchor existed are asked again.
    tracing::callsite::rebuild_interest_cache();
    guard
}

/// Field names and their values, as text (strings without quotes).
pub(crate) type Fields = BTreeMap<String, String>;

/// A span or an event as recorded.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) name: String,
    pub(crate) target: String,
    pub(crate) level: Level,
    pub(crate) fields: Fields,
}

#[derive(Default)]
struct Inner {
    spans: Vec<Recorded>,
    /// Live span ids to their place in `spans` (ids are reused after a span closes).
    live: BTreeMap<u64, usize>,
    events: Vec<Recorded>,
}

/// What was traced, shared with the test.
#[derive(Clone, Default)]
pub(crate) struct Traces(Arc<Mutex<Inner>>);

impl Traces {
    /// Records everything traced on this thread (at every level) until the guard drops.
    pub(crate) fn install(&self) -> tracing::subscriber::DefaultGuard {
        install_for_this_thread(tracing_subscriber::registry().with(self.clone()))
    }

    pub(crate) fn spans(&self, name: &str) -> Vec<Recorded> {
        let inner = self.0.lock().unwrap();
        inner
            .spans
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }

    pub(crate) fn events(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().events.clone()
    }

    /// Every field value of every span and event, one per line.
    pub(crate) fn all_values(&self) -> String {
        let inner = self.0.lock().unwrap();
        let all = inner.spans.iter().chain(&inner.events);
        all.flat_map(|r| r.fields.iter().map(|(k, v)| format!("{} {k}={v}", r.name)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber> Layer<S> for Traces {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let meta = attrs.metadata();
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        let mut inner = self.0.lock().unwrap();
        let at = inner.spans.len();
        inner.live.insert(id.into_u64(), at);
        inner.spans.push(Recorded {
            name: meta.name().to_owned(),
            target: meta.target().to_owned(),
            level: *meta.level(),
            fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut inner = self.0.lock().unwrap();
        if let Some(&at) = inner.live.get(&id.into_u64()) {
            values.record(&mut Visitor(&mut inner.spans[at].fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        self.0.lock().unwrap().events.push(Recorded {
            name: meta.name().to_owned(),
            target: meta.target().to_owned(),
            level: *meta.level(),
            fields,
        });
    }
}
