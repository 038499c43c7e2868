//! How search compares values, applied once when a resource is indexed: the query service
//! applies the same functions to the values in a query, so both sides meet in the same form.
//!
//! Each concern has its own module: string folding, date ranges, decimals, narrative text, full-text words.

pub mod date;
pub mod decimal;
pub mod narrative;
pub mod string;
pub mod words;
