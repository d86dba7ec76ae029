//! The API over HTTP, as API Gateway and Lambda drive it, in one test binary: each file
//! a concern, all on the test kit's in-process Dynoxide.

mod support;

mod api;
mod edges;
mod events;
mod faults;
mod logs;
mod openapi;
mod principals;
mod shared_table;
mod trace_logs;
