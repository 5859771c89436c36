//! The gofer's frame decoder must reject any byte string it cannot decode
//! with an error, never panic, for requests (server side) and replies
//! (client side).
#![no_main]

use gofer::proto::{Frame, Reply, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gofer::wire::decode::<Frame<Request>>(data);
    let _ = gofer::wire::decode::<Frame<Reply>>(data);
});
