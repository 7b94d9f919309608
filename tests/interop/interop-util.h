/* interop-util.h - processes for the interop tests: helper programs driven
 * line by line over pipes, a free loopback port, and a sweep that leaves no
 * descendant of the test running.
 *
 * A test calls interop_adopt_descendants() first: the test process then
 * becomes the reaper of everything it starts, also of daemons that detach
 * (smbd's children, wineserver), so interop_end_descendants() can stop
 * exactly those and nothing else on the machine.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Generous bounds: they turn a hang into a failure on a slow machine; no
 * test relies on them for ordering. */
/* smbd retries an open that met EAGAIN once a second for about 70 s
 * before it answers; an answer may take that long. */
#define INTEROP_ANSWER_TIMEOUT_MS 150000
#define INTEROP_START_TIMEOUT_MS 30000

void interop_adopt_descendants(void);

/* Skips the running test, with criterion's cr_skip_test(@...), after
 * @cleanup(): a skipped test does not get its .fini. */
#define interop_skip(cleanup, ...)                                                             \
        do {                                                                                   \
                cleanup();                                                                     \
                cr_skip_test(__VA_ARGS__);                                                     \
        } while (0)

/* The main() of an interop suite: criterion's, running one test at a time
 * (the clients load both cores by themselves, or share what the suite
 * prepares), with @before and @after (may be NULL) run around the tests. */
int interop_main(int argc, char *argv[], void (*before)(void), void (*after)(void));

/* Sends SIGTERM, then SIGKILL after @grace_ms, to every remaining
 * descendant of the test process, and reaps them. */
void interop_end_descendants(int grace_ms);

/* A loopback TCP port nobody listens on right now, or -errno. */
int interop_free_port(void);

/* Polls until something accepts TCP connections on 127.0.0.1:@port or
 * @alive_pid has exited; true when the port answered. */
bool interop_wait_for_port(int port, pid_t alive_pid, int timeout_ms);

/* Starts @argv with stdout and stderr appended to @log_path and stdin
 * from /dev/null; returns the pid or -errno. @envp NULL keeps the
 * environment. The child gets SIGTERM if the test process dies. */
pid_t interop_spawn_logged(const char *const *argv, const char *const *envp, const char *log_path);

/* Waits for @pid to exit, at most @timeout_ms; its wait status, or -1. */
int interop_wait_pid(pid_t pid, int timeout_ms);

/* Stops @pid: SIGTERM, then SIGKILL after @grace_ms. */
void interop_stop_pid(pid_t pid, int grace_ms);

/* A helper program that answers each command line with one line. */
typedef struct {
        pid_t pid;
        int to_child;   /* its stdin */
        int from_child; /* its stdout */
        char *name;     /* for messages */
        char *stderr_path;
        char buffer[4096];
        size_t buffered;
} InteropPeer;

/* Starts @argv as a peer; stderr goes to @stderr_path. 0 or -errno. */
int interop_peer_start(InteropPeer *peer, const char *name, const char *const *argv,
                       const char *const *envp, const char *stderr_path);

/* Sends one command line without waiting for the answer. 0 or -errno. */
int interop_peer_send(InteropPeer *peer, const char *command);

/* The next answer line (caller frees), or NULL on timeout or end of
 * output. */
char *interop_peer_read(InteropPeer *peer, int timeout_ms);

/* True when an answer is ready to be read now. */
bool interop_peer_has_answer(InteropPeer *peer);

/* Sends @command and returns its answer, or "<no answer>" (caller frees). */
char *interop_peer_ask(InteropPeer *peer, const char *command);

/* Closes its stdin, waits for it to finish, kills it if it does not. */
void interop_peer_stop(InteropPeer *peer);

/* Its stderr so far, for a failure message (caller frees). */
char *interop_peer_stderr(const InteropPeer *peer);

/* The last @max_bytes of a file, or "" (caller frees). */
char *interop_file_tail(const char *path, size_t max_bytes);

/* The number of waiters that attribute reports, or -1 when it does not
 * say. */
int interop_mailbag_waiters(const char *state);

/* A gateway's turn while @peer is sent @command (an External's create of
 * its missing lock file): this process takes INQUEUE3 by opening
 * @root/KEY/INQUEUE3.KEY read-only, sends @command, and 100 ms later (in
 * smbd's own retries of a refusal, or after the answer) deletes
 * @root/P1/0000000A.P1, made first, as a gateway does with a message it
 * delivered. Returns how long the delete took, in ms; *@gateway_fd is the
 * descriptor that still holds the queue. Asserts on failure. */
long long interop_gateway_delete_during(const char *root, InteropPeer *peer, const char *command,
                                        int *gateway_fd);
