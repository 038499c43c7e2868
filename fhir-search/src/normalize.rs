//! How search compares values, applied once when a resource is indexed: the query service
//! applies the same functions to the values in a query, so both sides meet in the same form.
//!
//! Each concern has its own module: string folding, date ranges, decimals, narrative text,
//! full-text words, and the bounded keys that keep every indexed value within what a btree
//! index entry holds.

pub mod date;
pub mod decimal;
pub mod key;
pub mod narrative;
pub mod string;
pub mod words;
