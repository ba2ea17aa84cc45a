//! How the queue's steps run: as the functions of one Redis function library, called with
//! FCALL and loaded when a server does not have it; or, where the server has no functions
//! (before Redis 7) or the user may not use them, as one EVAL script per step.
//!
//! A library's helpers are defined once, when it loads; an EVAL script defines them again
//! on every call (closures for ~25 helpers, measured at about 5 µs a call). The library's
//! name and its functions' carry a digest of its text, so clients of different kermes
//! versions on one server each call their own.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::Ordering;

use super::keys::{QueueKeys, SUFFIXES};
use super::scripts::{ALL, HELPERS, Step};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::resp::Value;
use crate::script::{Library, Script, sha1_hex};
use crate::value::{ArgBuf, FromValue, ToArgs};

/// The library and each step's function name.
struct Steps {
    library: Library,
    functions: HashMap<&'static str, String>,
}

static LIBRARY: LazyLock<Steps> = LazyLock::new(|| {
    let mut digest_input = String::new();
    for step in ALL {
        digest_input.push_str(step.name);
        digest_input.push_str(if step.reads_only { "\nr\n" } else { "\nw\n" });
        digest_input.push_str(step.body);
    }
    let helpers = helpers();
    digest_input.push_str(&helpers);
    let name = format!("kermes_mq_{}", &sha1_hex(&digest_input)[..12]);
    let mut code = format!("#!lua name={name}\n{helpers}\n");
    let mut functions = HashMap::new();
    for step in ALL {
        let function = format!("{name}_{}", step.name);
        let flags = if step.reads_only { "'no-writes'" } else { "" };
        code.push_str(&format!(
            "redis.register_function{{function_name = '{function}', flags = {{{flags}}}, \
             callback = function(KEYS, ARGV)\nbegin(KEYS)\n{}\nend}}\n",
            step.body
        ));
        functions.insert(step.name, function);
    }
    Steps {
        library: Library::new(code),
        functions,
    }
});

/// Each step as a script of its own, built the first time a server without functions is
/// met.
static SCRIPTS: LazyLock<HashMap<&'static str, Script>> = LazyLock::new(|| {
    ALL.iter()
        .map(|step| {
            let code = format!(
                "{}\nlocal function step(KEYS, ARGV)\nbegin(KEYS)\n{}\nend\nreturn step(KEYS, ARGV)\n",
                helpers(),
                step.body
            );
            (step.name, Script::new(code))
        })
        .collect()
});

/// The helpers, after the key suffixes they name keys with.
fn helpers() -> String {
    let suffixes: Vec<String> = SUFFIXES.iter().map(|s| format!("'{s}'")).collect();
    format!("local SUFFIXES = {{{}}}\n{HELPERS}", suffixes.join(", "))
}

/// The server does not offer functions to this user: not a version that has them, or
/// FUNCTION / FCALL not permitted.
fn refuses_functions(e: &Error) -> bool {
    e.server_error().is_some_and(|s| {
        let m = s.message().to_ascii_lowercase();
        s.code() == "NOPERM" || m.contains("unknown command") || m.contains("unknown subcommand")
    })
}

impl Step {
    /// Runs the step on `keys` with `args` (ARGV), returning its reply as `T`.
    pub(crate) async fn run<T: FromValue>(
        &self,
        client: &Client,
        keys: &QueueKeys,
        args: impl ToArgs,
    ) -> Result<T> {
        let mut encoded = ArgBuf::default();
        args.write_args(&mut encoded);
        if let Some(e) = encoded.take_error() {
            return Err(e);
        }
        if !client.no_functions().load(Ordering::Relaxed) {
            // FCALL; the library is loaded first when the server does not have it.
            let called = LIBRARY
                .library
                .call::<_, Value>(client, &LIBRARY.functions[self.name], keys, &encoded)
                .await;
            match called {
                Err(e) if refuses_functions(&e) => {
                    tracing::info!(error = %e, "the server refuses functions: the queue's steps run as scripts");
                    client.no_functions().store(true, Ordering::Relaxed);
                }
                other => return T::from_value(other?),
            }
        }
        SCRIPTS[self.name].run(client, keys, &encoded).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_its_own_function() {
        assert_eq!(LIBRARY.functions.len(), ALL.len());
        for step in ALL {
            let f = &LIBRARY.functions[step.name];
            assert!(f.starts_with("kermes_mq_") && f.ends_with(step.name), "{f}");
            assert!(LIBRARY.library.code().contains(&format!("'{f}'")));
        }
    }
}
