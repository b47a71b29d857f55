//! Panics as Sentry events: the message and where it happened.
//!
//! Sentry's own panic integration attaches a stack trace, which takes the `backtrace` crate, its
//! symbol reader and a regex engine: code mapped into every process, Sentry or not, that kept
//! 0.8 MiB more of the image resident (docs/performance.md). In the stripped release binary the
//! trace it could read would be bare addresses anyway. The event here names the panic's source line
//! as its one frame, which is what the trace's top frame would have said.

use std::any::Any;
use std::panic::PanicHookInfo;
use std::sync::Once;

use sentry::protocol::{Event, Exception, Frame, Level, Mechanism, Stacktrace};

/// Runs the hook that was installed before (the message on stderr, first, so that the log has
/// it whatever happens next), then sends the panic to the active Sentry hub when it has a
/// client. Installed once, however often it is called.
pub fn report_to_sentry() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let next = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            next(info);
            sentry::Hub::with_active(|hub| {
                if let Some(client) = hub.client() {
                    hub.capture_event(event(info));
                    // The process may end with this panic: the event must be out first.
                    client.flush(None);
                }
            });
        }));
    });
}

/// The text of a panic: `panic!` leaves a `&str` or a `String`.
pub(crate) fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// The event of a panic: fatal, unhandled, the message as the exception's value and the
/// source line as its frame (in the app when the path is ours, relative; a dependency's is
/// absolute).
fn event(info: &PanicHookInfo<'_>) -> Event<'static> {
    let message = message(info.payload());
    let stacktrace = info.location().map(|at| Stacktrace {
        frames: vec![Frame {
            filename: Some(at.file().to_string()),
            lineno: Some(u64::from(at.line())),
            colno: Some(u64::from(at.column())),
            in_app: Some(std::path::Path::new(at.file()).is_relative()),
            ..Frame::default()
        }],
        ..Stacktrace::default()
    });
    let mut event = Event {
        exception: vec![Exception {
            ty: "panic".into(),
            value: Some(message.to_string()),
            mechanism: Some(Mechanism { ty: "panic".into(), handled: Some(false), ..Mechanism::default() }),
            stacktrace,
            ..Exception::default()
        }]
        .into(),
        level: Level::Fatal,
        ..Event::default()
    };
    if let Some(thread) = std::thread::current().name() {
        event.tags.insert("thread".into(), thread.to_string());
    }
    event
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use sentry::{ClientOptions, Envelope, Hub, Transport};

    /// Keeps what the client would send.
    #[derive(Default)]
    struct Kept(Mutex<Vec<Envelope>>);

    impl Transport for Kept {
        fn send_envelope(&self, envelope: Envelope) {
            self.0.lock().unwrap().push(envelope);
        }
    }

    #[test]
    fn a_panic_becomes_a_fatal_event_naming_its_message_and_line() {
        // The hook before ours, which must still run: it passes other tests' panics on.
        static PREVIOUS_SAW: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("panicking") {
                PREVIOUS_SAW.lock().unwrap().push(info.to_string());
            }
            default(info);
        }));
        super::report_to_sentry();
        let kept = Arc::new(Kept::default());
        let transport = Arc::clone(&kept);
        let mut options = ClientOptions::new();
        options.dsn = Some("https://public@127.0.0.1:9/1".parse().unwrap());
        options.transport =
            Some(Arc::new(move |_: &ClientOptions| Arc::clone(&transport) as Arc<dyn Transport>));
        let hub = Arc::new(Hub::new(Some(Arc::new(options.into())), Arc::default()));
        // Its own thread, so that its name is known and no other test's hub is in the way.
        let line = std::thread::Builder::new()
            .name("panicking".into())
            .spawn(move || {
                Hub::run(hub, || {
                    let line = line!() + 1;
                    let caught = std::panic::catch_unwind(|| panic!("the {} is broken", "pump"));
                    assert!(caught.is_err());
                    line
                })
            })
            .unwrap()
            .join()
            .unwrap();
        let envelopes = kept.0.lock().unwrap();
        let event = envelopes.iter().find_map(Envelope::event).expect("the panic was sent");
        assert_eq!(event.level, sentry::Level::Fatal);
        let exception = &event.exception.values[0];
        assert_eq!(exception.ty, "panic");
        assert_eq!(exception.value.as_deref(), Some("the pump is broken"));
        assert_eq!(exception.mechanism.as_ref().and_then(|m| m.handled), Some(false));
        let frame = &exception.stacktrace.as_ref().expect("the panic's line").frames[0];
        assert_eq!(frame.filename.as_deref(), Some(file!()));
        assert_eq!(frame.lineno, Some(u64::from(line)));
        assert_eq!(frame.in_app, Some(true), "{:?}", frame.filename);
        assert_eq!(event.tags.get("thread").map(String::as_str), Some("panicking"));
        let previous = PREVIOUS_SAW.lock().unwrap();
        assert!(previous.len() == 1 && previous[0].contains("the pump is broken"), "{previous:?}");
    }
}
