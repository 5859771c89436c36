//! The ELF loader's checks on an untrusted image (headers, program headers,
//! segment layout) must fail cleanly on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sentry::loader::check_image(data);
});
