//! Out of file descriptors, still answering: the server keeps one spare descriptor and gives it
//! up to accept a client and answer it 503. Alone in its test binary, because it lowers the
//! process's descriptor limit.

mod common;

use common::{Mode, config, read_response_head, start, tcp};
use rustix::process::{Resource, getrlimit, setrlimit};
use std::fs::File;

#[test]
fn out_of_descriptors_a_client_still_gets_503() {
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let low = open + 64;
    // Soft and hard, so that the server cannot raise it back.
    setrlimit(
        Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(low),
            maximum: Some(low),
        },
    )
    .unwrap();
    assert_eq!(getrlimit(Resource::Nofile).current, Some(low));
    let server = start(Mode::Echo, config());
    // Use every descriptor but one, as another part of the process might.
    let mut hogs = Vec::new();
    while let Ok(file) = File::open("/dev/null") {
        hogs.push(file);
    }
    drop(hogs.pop());
    // The client's socket takes the last one; the server has none left to accept it with but
    // its spare.
    let mut client = tcp(server.addr);
    let (status, head) = read_response_head(&mut client);
    assert_eq!(status, 503, "{head}");
    drop(client);
    drop(hogs);
    let stats = server.stop();
    assert!(stats.refused_over_capacity >= 1);
}
