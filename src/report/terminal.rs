//! What an output stream can show: escape codes or not, and how many columns.
//!
//! This module owns the decisions only, from the environment and the stream; it must not
//! print. [`Terminal::decide`] is pure, so the rules are tested without a terminal:
//!
//! - Escape codes (colour, clearing the screen) only on a terminal, and never when `NO_COLOR`
//!   is present and non-empty (<https://no-color.org>). A file, a pipe or a journal would keep
//!   them as garbage.
//! - Width: `COLUMNS` when it is a positive number, piped or not: it is the user's explicit
//!   word. Else the terminal's own width, else 80 for a terminal that does not say. Else
//!   (a pipe or a file) no width at all: nothing is shortened, so `grep` and `diff` see whole
//!   names, and a file has no edge to fit.

use std::ffi::{OsStr, OsString};
use std::io::IsTerminal;

/// The width of a terminal that does not tell its own: the classic one.
const FALLBACK_WIDTH: usize = 80;

/// What may be written to one output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    /// Escape codes (colour, clearing the screen) may be written.
    pub ansi: bool,
    /// The columns a line may take; `None`: any, nothing is shortened.
    pub width: Option<usize>,
}

/// The environment variables the decisions read, so tests need not set the process's own.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `NO_COLOR`.
    pub no_color: Option<OsString>,
    /// `COLUMNS`.
    pub columns: Option<OsString>,
}

impl Env {
    /// This process's variables.
    pub fn process() -> Self {
        Self { no_color: std::env::var_os("NO_COLOR"), columns: std::env::var_os("COLUMNS") }
    }
}

impl Terminal {
    /// Plain text of any width: what a file gets.
    pub const PLAIN: Self = Self { ansi: false, width: None };

    /// What stdout takes now. Asked afresh for each table, so a resized window is followed.
    pub fn stdout() -> Self {
        let out = std::io::stdout();
        let tty = out.is_terminal();
        Self::decide(&Env::process(), tty, if tty { window_width(&out) } else { None })
    }

    /// The rules of the module doc, from the variables, whether the stream is a terminal and
    /// the width that terminal reports.
    pub fn decide(env: &Env, tty: bool, tty_width: Option<usize>) -> Self {
        let columns = env.columns.as_deref().and_then(positive_number);
        let width = columns.or(if tty { Some(tty_width.unwrap_or(FALLBACK_WIDTH)) } else { None });
        Self { ansi: ansi(env.no_color.as_deref(), tty), width }
    }
}

/// Whether the logs on stderr may be coloured: the same rule as the tables'.
pub fn stderr_ansi() -> bool {
    ansi(std::env::var_os("NO_COLOR").as_deref(), std::io::stderr().is_terminal())
}

/// Escape codes only on a terminal, and not when `NO_COLOR` is present and non-empty (an
/// empty one counts as unset, as no-color.org says).
fn ansi(no_color: Option<&OsStr>, tty: bool) -> bool {
    tty && no_color.is_none_or(OsStr::is_empty)
}

fn positive_number(text: &OsStr) -> Option<usize> {
    text.to_str()?.trim().parse().ok().filter(|&n| n > 0)
}

/// The terminal's width in columns, if it tells (a window of 0 columns does not).
#[cfg(unix)]
fn window_width(stream: &std::io::Stdout) -> Option<usize> {
    let size = rustix::termios::tcgetwinsize(stream).ok()?;
    (size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// Elsewhere the terminal is taken to be [`FALLBACK_WIDTH`] wide.
#[cfg(not(unix))]
fn window_width(_: &std::io::Stdout) -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(no_color: Option<&str>, columns: Option<&str>) -> Env {
        Env { no_color: no_color.map(Into::into), columns: columns.map(Into::into) }
    }

    #[test]
    fn a_terminal_gets_colour_and_its_width() {
        assert_eq!(
            Terminal::decide(&env(None, None), true, Some(132)),
            Terminal { ansi: true, width: Some(132) }
        );
    }

    #[test]
    fn no_color_present_and_not_empty_turns_escape_codes_off() {
        assert!(!Terminal::decide(&env(Some("1"), None), true, Some(100)).ansi);
        assert!(!Terminal::decide(&env(Some("false"), None), true, Some(100)).ansi, "any value counts");
        assert!(Terminal::decide(&env(Some(""), None), true, Some(100)).ansi, "empty is unset");
    }

    #[test]
    fn a_pipe_gets_no_escape_codes_and_no_width() {
        assert_eq!(Terminal::decide(&env(None, None), false, None), Terminal::PLAIN);
    }

    #[test]
    fn columns_wins_over_the_terminal_and_applies_to_a_pipe() {
        assert_eq!(Terminal::decide(&env(None, Some("60")), true, Some(200)).width, Some(60));
        assert_eq!(Terminal::decide(&env(None, Some(" 60 ")), false, None).width, Some(60));
    }

    #[test]
    fn a_useless_columns_is_ignored() {
        for bad in ["0", "-5", "wide", ""] {
            assert_eq!(Terminal::decide(&env(None, Some(bad)), true, Some(100)).width, Some(100), "{bad}");
            assert_eq!(Terminal::decide(&env(None, Some(bad)), false, None).width, None, "{bad}");
        }
    }

    #[test]
    fn a_terminal_that_does_not_say_its_width_is_80_wide() {
        assert_eq!(Terminal::decide(&env(None, None), true, None).width, Some(80));
    }
}
