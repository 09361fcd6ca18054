//! StatusCollectors: what a collector's spec means and how its results are computed,
//! as KubeStellar's status controller does (`pkg/status`, `docs/status-semantics.md`).
//! Pure: the dataflow and the oracle both use it.
//!
//! - [`cel`]: the CEL adapter (limits, the identifier check, JSON to CEL, CEL to a cell).
//! - [`spec`]: a collector's spec checked and compiled ([`CollectorSpec`]), and its
//!   evaluation on one row (one WEC of a workload object).
//! - [`combine`](mod@combine): the rows combined into the collector's result ([`Combination`]).
//! - [`value`]: the cells of a CombinedStatus row ([`Cell`]) and Go's number format.
//! - [`status`]: one CombinedStatus ([`CombinedResult`]): which collectors count, its
//!   rows, its object; a collector's status ([`CollectorStatus`]).

pub mod cel;
pub mod combine;
pub mod spec;
pub mod status;
pub mod value;

pub use combine::{Combination, combine};
pub use spec::{CollectorSpec, RowEvaluation, Subject};
pub use status::{CollectorStatus, CombinedResult, TableRow, compile_collector, evaluate_row};
pub use value::{Cell, go_float};
