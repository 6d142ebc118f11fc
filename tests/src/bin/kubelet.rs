//! Stand-in kubelet: ignores its arguments and waits until killed, so that
//! `/proc/<pid>/cmdline` is whatever the test gave it.
fn main() {
    loop {
        std::thread::park();
    }
}
