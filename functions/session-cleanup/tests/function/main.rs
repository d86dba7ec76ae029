//! The cleanup function, in one test binary: the backfill Scan (`scan`), where a run
//! stops and resumes (`stops`), and the stream upkeep (`upkeep`), all on the test kit's
//! in-process Dynoxide.

mod scan;
mod stops;
mod upkeep;
