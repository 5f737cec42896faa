//! One readable line for a fault message: the decoding lives in `sel4::fault_report`, shared
//! with `proc` (which handles the faults of the components it builds).

pub use sel4::fault_report::FaultReport;
