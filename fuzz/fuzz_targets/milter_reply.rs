#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    petrel::fuzz_entry::milter_reply(data);
});
