//! Exit codes, and the failure that exits 3.

/// The deploy may proceed (verify), the change was created or reused (request), the result was
/// recorded (report).
pub const EXIT_PROCEED: u8 = 0;
/// The change is rejected, cancelled or closed, or its planned end has passed.
pub const EXIT_BLOCKED: u8 = 1;
/// `verify` answered wait, or `verify --wait` reached `--timeout` still waiting.
pub const EXIT_TIMED_OUT: u8 = 2;
/// A missing or invalid variable or argument, a bad URL, Gatehouse unreachable, the token refused,
/// an unknown change, or 5xx/429 after retries.
pub const EXIT_MISCONFIGURED: u8 = 3;

/// A misconfiguration or an unreachable Gatehouse: exit 3 with this message.
#[derive(Debug)]
pub(super) struct Fail(pub(super) String);
