//! The incremental UTF-8 validator against `std::str::from_utf8`, at split points taken from the
//! input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::utf8::Utf8Validator;

fuzz_target!(|data: &[u8]| {
    let Some((&cuts, text)) = data.split_first() else {
        return;
    };
    // The first byte picks the piece sizes: 1 to 8 bytes, cycling through its bits.
    let sizes: Vec<usize> = (0..4)
        .map(|i| 1 + ((cuts >> (2 * i)) & 3) as usize * 2)
        .collect();
    let mut validator = Utf8Validator::new();
    let mut pos = 0;
    let mut ok = true;
    for size in sizes.iter().cycle() {
        if pos >= text.len() {
            break;
        }
        let end = (pos + size).min(text.len());
        if validator.feed(&text[pos..end]).is_err() {
            ok = false;
            // Failing fast: the prefix up to this piece must already be invalid, i.e. no
            // continuation could make it valid.
            let prefix = &text[..end];
            let error = std::str::from_utf8(prefix).expect_err("failed on a valid prefix");
            assert!(
                error.error_len().is_some(),
                "failed on a merely incomplete prefix"
            );
            break;
        }
        pos = end;
    }
    if ok {
        ok = validator.finish().is_ok();
    }
    assert_eq!(ok, std::str::from_utf8(text).is_ok());
});
