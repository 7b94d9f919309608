/* gluster-fixture.h - a private GlusterFS volume, mounted twice, as two
 * nodes of a cluster see one share.
 *
 * gluster_fixture_start() makes a private temporary directory, writes a
 * glusterd.vol of its own into it (working, run and log directories, CLI
 * socket: all inside it) and starts Debian's glusterd in the foreground in
 * namespaces of its own: a network namespace whose only interface is
 * loopback, where glusterd and its brick processes listen on 127.0.0.2 (so
 * they can meet no other glusterd and no network), a mount namespace in
 * which the few paths glusterd spells without asking its options
 * (/var/lib/glusterd, /run/gluster, /var/log/glusterfs) are private
 * directories, and a PID namespace, so that ending its first process ends
 * glusterd and every brick process it started. It then creates and starts
 * a one-brick volume (the brick a folder of the temporary directory) and
 * mounts it with the glusterfs client at clients[0] and clients[1]; the
 * clients join glusterd's network namespace and nothing else, so their
 * mounts are ordinary mounts of the test.
 *
 * gluster_fixture_stop() unmounts the clients, stops and deletes the
 * volume, ends glusterd's namespaces and removes the directory; it is safe
 * at any stage, also twice, and it also runs at exit. A warden process
 * started first does the same if the test process dies without stopping
 * (a crash, a timeout's SIGKILL), so nothing outlives a test.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#define GLUSTER_FIXTURE_CLIENTS 2
/* glusterd refuses 127.0.0.1 and "localhost" for a brick's host. */
#define GLUSTER_FIXTURE_ADDRESS "127.0.0.2"
#define GLUSTER_FIXTURE_VOLUME "mailbag"

typedef struct {
        char *dir;     /* the private temporary directory */
        char *socket;  /* dir/run/glusterd.socket: the CLI's way in */
        char *logs;    /* dir/log: glusterd's, the bricks', the clients', the CLI's */
        char *brick;   /* dir/brick/mailbag */
        char *clients[GLUSTER_FIXTURE_CLIENTS]; /* dir/client-a, dir/client-b */
        pid_t client_pids[GLUSTER_FIXTURE_CLIENTS]; /* 0 when not running */
        pid_t warden;    /* 0 when not running */
        int warden_stop; /* a byte written here asks the warden to clean up */
        int warden_news; /* the warden reports here: glusterd's namespace, its end */
        pid_t namespace_pid; /* unshare(1), holding glusterd's namespaces */
        bool volume_created;
        bool volume_started;
        bool defaults; /* the client's and the volume's own caches left on */
} GlusterFixture;

/* How the volume and its clients are set up: as docs/cluster.md's recipe
 * says (no kernel caching on the clients, the volume's performance
 * translators off), or as GlusterFS leaves them. */
typedef enum {
        GLUSTER_RECIPE,
        GLUSTER_DEFAULTS,
} GlusterSetup;

/* 0 on success. Otherwise -errno, *reason says why GlusterFS could not run
 * here (caller frees) and the fixture is stopped: the test skips with that
 * reason. */
int gluster_fixture_start(GlusterFixture *g, char **reason);
/* The same, set up as @setup says (gluster_fixture_start: the recipe). */
int gluster_fixture_start_as(GlusterFixture *g, GlusterSetup setup, char **reason);

void gluster_fixture_stop(GlusterFixture *g);

/* Runs the gluster CLI against the fixture's glusterd with @args (NULL
 * terminated). 0 when it succeeded; its output in *output if non-NULL
 * (caller frees). */
int gluster_fixture_cli(const GlusterFixture *g, const char *const *args, char **output);
