//! How a [`Behaviour`] becomes the component: the `export!` macro and the
//! glue behind it.
//!
//! The glue keeps the one instance of the behaviour in a thread-local
//! (a component instance is single-threaded), turns WIT arguments into the
//! SDK's types and errors into strings. It is generic, written once here;
//! the macro only names the type.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::{Behaviour, Config, WakeupId};

/// Exports `$behaviour` (a type implementing [`crate::Behaviour`]) as the
/// plugin component. Use it once, at the top level of the plugin crate
/// (a `cdylib`):
///
/// ```
/// #[derive(Default)]
/// struct Quiet;
/// impl tenure_sdk::Behaviour for Quiet {}
///
/// tenure_sdk::export!(Quiet);
/// ```
///
/// In a `wasm32` build this emits the component's exports and its type
/// information; in a native build (unit tests, doctests) it only checks
/// that the type is a `Behaviour`.
#[cfg(target_arch = "wasm32")]
#[macro_export]
macro_rules! export {
    ($behaviour:ty) => {
        const _: () = {
            type __TenureExported = $crate::__private::Exported<$behaviour>;
    $crate::__bindings::__export_plugin!(__TenureExported with_types_in $crate::__bindings);
        };
    };
}

/// Exports `$behaviour` (a type implementing [`crate::Behaviour`]) as the
/// plugin component. Use it once, at the top level of the plugin crate
/// (a `cdylib`):
///
/// ```
/// #[derive(Default)]
/// struct Quiet;
/// impl tenure_sdk::Behaviour for Quiet {}
///
/// tenure_sdk::export!(Quiet);
/// ```
///
/// In a `wasm32` build this emits the component's exports and its type
/// information; in a native build (unit tests, doctests) it only checks
/// that the type is a `Behaviour`.
#[cfg(not(target_arch = "wasm32"))]
#[macro_export]
macro_rules! export {
    ($behaviour:ty) => {
        const _: fn() = $crate::__private::assert_behaviour::<$behaviour>;
    };
}

thread_local! {
    /// The exported behaviour, once created. `dyn Any` because statics
    /// cannot be generic; a component exports exactly one type.
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// The component's exports, implemented for `B` (see [`export!`]).
pub struct Exported<B>(PhantomData<B>);

/// Compiles only for a [`Behaviour`]: what `export!` checks natively.
pub fn assert_behaviour<B: Behaviour>() {}

/// Runs `f` on the instance, creating it with `Default` if a callback came
/// before `init` (the host never does that, but a no-op beats a trap).
fn with<B: Behaviour, T>(f: impl FnOnce(&mut B) -> T) -> T {
    INSTANCE.with_borrow_mut(|slot| {
        if !slot.as_ref().is_some_and(|b| b.is::<B>()) {
            *slot = Some(Box::new(B::default()));
        }
        match slot.as_mut().and_then(|b| b.downcast_mut::<B>()) {
            Some(behaviour) => f(behaviour),
            // Just stored as a `B`: unreachable, but no panic either.
            None => f(&mut B::default()),
        }
    })
}

impl<B: Behaviour> Exported<B> {
    /// `init`: a fresh `B`, kept only if it accepts its config.
    pub fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let mut behaviour = B::default();
        let result = behaviour.init(&Config::from_pairs(config));
        INSTANCE.with_borrow_mut(|slot| {
            *slot = result.is_ok().then(|| Box::new(behaviour) as Box<dyn Any>);
        });
        result.map_err(crate::Error::into_message)
    }

    /// `on-become-leader`.
    pub fn on_become_leader(term: u64) -> Result<(), String> {
        with(|b: &mut B| b.on_become_leader(term)).map_err(crate::Error::into_message)
    }

    /// `on-become-follower`.
    pub fn on_become_follower(leader: Option<String>, term: u64) {
        with(|b: &mut B| b.on_become_follower(leader.as_deref(), term));
    }

    /// `on-peer-joined`.
    pub fn on_peer_joined(peer: String) {
        with(|b: &mut B| b.on_peer_joined(&peer));
    }

    /// `on-peer-left`.
    pub fn on_peer_left(peer: String) {
        with(|b: &mut B| b.on_peer_left(&peer));
    }

    /// `on-term-changed`.
    pub fn on_term_changed(old: u64, new: u64) {
        with(|b: &mut B| b.on_term_changed(old, new));
    }

    /// `on-message`.
    pub fn on_message(sender: String, payload: Vec<u8>) {
        with(|b: &mut B| b.on_message(&sender, &payload));
    }

    /// `on-call`.
    pub fn on_call(request: Vec<u8>) -> Result<Vec<u8>, String> {
        with(|b: &mut B| b.on_call(&request)).map_err(crate::Error::into_message)
    }

    /// `on-scheduled`.
    pub fn on_scheduled(id: u64, tag: String) {
        with(|b: &mut B| b.on_scheduled(WakeupId::from_raw(id), &tag));
    }

    /// `inspect`.
    pub fn inspect() -> Vec<(String, String)> {
        with(|b: &mut B| b.inspect())
    }

    /// `snapshot`.
    pub fn snapshot() -> Vec<u8> {
        with(|b: &mut B| b.snapshot())
    }

    /// `restore`.
    pub fn restore(snapshot: Vec<u8>) -> Result<(), String> {
        with(|b: &mut B| b.restore(&snapshot)).map_err(crate::Error::into_message)
    }
}

#[cfg(target_arch = "wasm32")]
impl<B: Behaviour> crate::__bindings::exports::tenure::election::behaviour::Guest for Exported<B> {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        Self::init(config)
    }
    fn on_become_leader(term: u64) -> Result<(), String> {
        Self::on_become_leader(term)
    }
    fn on_become_follower(leader: Option<String>, term: u64) {
        Self::on_become_follower(leader, term);
    }
    fn on_peer_joined(peer: String) {
        Self::on_peer_joined(peer);
    }
    fn on_peer_left(peer: String) {
        Self::on_peer_left(peer);
    }
    fn on_term_changed(old: u64, new: u64) {
        Self::on_term_changed(old, new);
    }
    fn on_message(sender: String, payload: Vec<u8>) {
        Self::on_message(sender, payload);
    }
    fn on_call(request: Vec<u8>) -> Result<Vec<u8>, String> {
        Self::on_call(request)
    }
    fn on_scheduled(id: u64, tag: String) {
        Self::on_scheduled(id, tag);
    }
    fn inspect() -> Vec<(String, String)> {
        Self::inspect()
    }
    fn snapshot() -> Vec<u8> {
        Self::snapshot()
    }
    fn restore(snapshot: Vec<u8>) -> Result<(), String> {
        Self::restore(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Term};

    #[derive(Default)]
    struct Counter {
        configured: bool,
        led: Vec<Term>,
    }

    impl Behaviour for Counter {
        fn init(&mut self, config: &Config) -> Result<(), Error> {
            config.allow_only(&["ok"])?;
            self.configured = true;
            Ok(())
        }
        fn on_become_leader(&mut self, term: Term) -> Result<(), Error> {
            self.led.push(term);
            if term == 13 {
                return Err("unlucky".into());
            }
            Ok(())
        }
        fn inspect(&mut self) -> Vec<(String, String)> {
            vec![
                ("configured".into(), self.configured.to_string()),
                ("led".into(), format!("{:?}", self.led)),
            ]
        }
    }

    type Glue = Exported<Counter>;

    #[test]
    fn one_instance_lives_from_init_on() {
        assert_eq!(Glue::init(vec![("ok".into(), "1".into())]), Ok(()));
        assert_eq!(Glue::on_become_leader(2), Ok(()));
        assert_eq!(Glue::on_become_leader(13), Err("unlucky".to_string()));
        assert_eq!(
            Glue::inspect(),
            [
                ("configured".to_string(), "true".to_string()),
                ("led".to_string(), "[2, 13]".to_string())
            ]
        );
    }

    #[test]
    fn a_refused_config_keeps_no_instance() {
        let refused = Glue::init(vec![("nope".into(), "1".into())]);
        assert_eq!(
            refused,
            Err("`nope`: unknown key (known: `ok`)".to_string())
        );
        // A callback without an instance gets a fresh default one.
        assert_eq!(Glue::inspect()[0].1, "false");
    }

    #[test]
    fn defaults_answer_sensibly() {
        #[derive(Default)]
        struct Nothing;
        impl Behaviour for Nothing {}
        type G = Exported<Nothing>;
        assert_eq!(G::init(Vec::new()), Ok(()));
        assert_eq!(G::on_become_leader(1), Ok(()));
        assert!(G::on_call(b"x".to_vec()).is_err());
        assert_eq!(G::snapshot(), Vec::<u8>::new());
        assert_eq!(G::restore(b"anything".to_vec()), Ok(()));
        assert!(G::inspect().is_empty());
    }
}
