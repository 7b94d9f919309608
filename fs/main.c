/* main.c - command line, startup checks, and the FUSE session's life.
 *
 * mailbagfs [options] BACKING MOUNTPOINT
 *
 * The backing directory is opened before the mount is made, so BACKING and
 * MOUNTPOINT may be the same directory: the share is then served in place.
 * A mountpoint strictly inside BACKING is refused, as the daemon would
 * otherwise walk into its own mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <glib.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "kernel-cache.h"
#include "log.h"
#include "mountinfo.h"
#include "status-line.h"
#include "coherence.h"
#include "daemon.h"

typedef struct {
        char *backing;    /* first non-option argument */
        char *mountpoint; /* second, checked here; libfuse parses it again */
        char *log_level; /* -o log_level= */
        char *profile;   /* -o profile= */
        char *v20;       /* -o v20= */
        char *mode;      /* -o mode= */
        char *trail;     /* -o trail= (MiB) */
        char *trail_node; /* -o trail_node= */
        char *passthrough; /* -o passthrough= */
        GPtrArray *postoffices; /* -o postoffice=, each may list several */
        bool bad_option;        /* an -o value did not parse (said on stderr) */
        double cache_timeout;
        double lock_timeout;
        double hold_warning;
        double max_postoffices;
        int ready_fd;
} Options;

#define MAILBAGFS_OPT(templ, field, value) {templ, offsetof(Options, field), value}

enum {
        OPTION_KEY_POSTOFFICE = 1,
        OPTION_KEY_BUSY_ANSWER,
        OPTION_KEY_CACHE_TIMEOUT,
        OPTION_KEY_LOCK_TIMEOUT,
        OPTION_KEY_READY_FD,
        OPTION_KEY_HOLD_WARNING,
        OPTION_KEY_MAX_POSTOFFICES,
};

static const struct fuse_opt option_spec[] = {
        MAILBAGFS_OPT("log_level=%s", log_level, 0),
        FUSE_OPT_KEY("cache_timeout=", OPTION_KEY_CACHE_TIMEOUT),
        FUSE_OPT_KEY("ready_fd=", OPTION_KEY_READY_FD),
        MAILBAGFS_OPT("profile=%s", profile, 0),
        MAILBAGFS_OPT("v20=%s", v20, 0),
        MAILBAGFS_OPT("mode=%s", mode, 0),
        MAILBAGFS_OPT("trail=%s", trail, 0),
        MAILBAGFS_OPT("trail_node=%s", trail_node, 0),
        MAILBAGFS_OPT("passthrough=%s", passthrough, 0),
        FUSE_OPT_KEY("lock_timeout=", OPTION_KEY_LOCK_TIMEOUT),
        FUSE_OPT_KEY("hold_warning=", OPTION_KEY_HOLD_WARNING),
        FUSE_OPT_KEY("max_postoffices=", OPTION_KEY_MAX_POSTOFFICES),
        FUSE_OPT_KEY("postoffice=", OPTION_KEY_POSTOFFICE),
        FUSE_OPT_KEY("busy_answer=", OPTION_KEY_BUSY_ANSWER),
        FUSE_OPT_END,
};

/* The whole of @text is one finite number: fuse_opt's own "%lf" takes
 * "5abc" as 5 and "nan" as a number. */
static bool option_parse_number(const char *text, double *out)
{
        char *end = NULL;
        errno = 0;
        double value = g_ascii_strtod(text, &end);
        if (!text[0] || !end || *end || errno || !isfinite(value))
                return false;
        *out = value;
        return true;
}

/* -o NAME=VALUE with a number: 0, or -1 after saying what is wrong. */
static int option_take_number(Options *options, const char *arg, const char *what,
                              double *out)
{
        const char *value = strchr(arg, '=') + 1;
        if (option_parse_number(value, out))
                return 0;
        fprintf(stderr, "mailbagfs: bad %.*s '%s' (%s)\n", (int)(value - arg - 1), arg, value,
                what);
        options->bad_option = true;
        return -1;
}

static int option_take_backing(void *data, const char *arg, int key, struct fuse_args *outargs)
{
        Options *options = data;
        double number;
        switch (key) {
        case OPTION_KEY_CACHE_TIMEOUT:
                option_take_number(options, arg, "a number of seconds", &options->cache_timeout);
                return 0;
        case OPTION_KEY_LOCK_TIMEOUT:
                option_take_number(options, arg, "a number of seconds", &options->lock_timeout);
                return 0;
        case OPTION_KEY_MAX_POSTOFFICES:
                option_take_number(options, arg, "a number of postoffices",
                                   &options->max_postoffices);
                return 0;
        case OPTION_KEY_HOLD_WARNING:
                option_take_number(options, arg, "a number of seconds", &options->hold_warning);
                return 0;
        case OPTION_KEY_READY_FD:
                if (option_take_number(options, arg, "a descriptor number", &number) == 0) {
                        if (number < 0 || number > INT_MAX || number != (double)(int)number) {
                                fprintf(stderr, "mailbagfs: bad ready_fd '%s' (a descriptor "
                                                "number)\n", strchr(arg, '=') + 1);
                                options->bad_option = true;
                        } else {
                                options->ready_fd = (int)number;
                        }
                }
                return 0;
        default:
                break;
        }
        if (key == OPTION_KEY_POSTOFFICE) {
                /* Repeated or comma separated: fuse_opt splits on commas. */
                const char *value = arg + strlen("postoffice=");
                if (!options->postoffices)
                        options->postoffices = g_ptr_array_new_with_free_func(g_free);
                g_ptr_array_add(options->postoffices, g_strdup(value));
                return 0;
        }
        if (key == OPTION_KEY_BUSY_ANSWER) {
                /* Parsed before any thread starts: policy.c's table is
                 * read without a lock once the daemon serves. */
                const char *value = arg + strlen("busy_answer=");
                if (policy_busy_answer_add(value) < 0) {
                        fprintf(stderr, "mailbagfs: bad busy_answer '%s' (PROGRAM:ANSWER, ANSWER "
                                        "wait, queue or an errno name such as EAGAIN)\n",
                                value);
                        options->bad_option = true;
                }
                return 0;
        }
        if (key == FUSE_OPT_KEY_NONOPT && !options->backing) {
                options->backing = g_strdup(arg);
                return 0;
        }
        if (key == FUSE_OPT_KEY_NONOPT && !options->mountpoint)
                options->mountpoint = g_strdup(arg);
        return 1;
}

static void print_usage(const char *program)
{
        printf("usage: %s [options] BACKING MOUNTPOINT\n\n"
               "Serves the postoffice share BACKING at MOUNTPOINT.\n\n"
               "mailbagfs options:\n"
               "    -o log_level=LEVEL     error, warning, info (default) or debug\n"
               "    -o cache_timeout=SEC   how long the kernel caches names and\n"
               "                           attributes (default 1.0)\n"
               "    -o ready_fd=N          write one byte to descriptor N once mounted\n"
               "    -o profile=PATH        postoffice profile (default: built-in Microsoft Mail 3.x)\n"
               "    -o lock_timeout=SEC    how long a refused mailbag open waits before it\n"
               "                           fails with a sharing violation (default 10)\n"
               "    -o hold_warning=SEC    log a hold that lasts longer (default 600; 0: never)\n"
               "    -o max_postoffices=N   protect at most N postoffices at once (default 4096)\n"
               "    -o mode=enforce|observe\n"
               "                           enforce (default): every protocol excludes every\n"
               "                           other; observe: nothing waits or is refused, the\n"
               "                           overlaps enforcing would stop are counted and\n"
               "                           logged (switch: user.mailbag.mode of the root)\n"
               "    -o trail=MIB           how much of each postoffice's trail this node keeps\n"
               "                           on the share (default 16; 0: no trail)\n"
               "    -o trail_node=NAME     this node's trail stream (default: the host name)\n"
               "    -o passthrough=1|0     1 (default): the kernel reads and writes files that\n"
               "                           hold no lease on a local backing store itself, where\n"
               "                           libfuse (3.17 or later) and the kernel can; 0: never\n"
               "    -o v20=any|all|none    which MTAs run with -V20; warn about the others\n"
               "                           (default any: no warnings)\n"
               "    -o postoffice=PATH     protect only this postoffice folder (relative to\n"
               "                           BACKING; repeat for more; default: every folder\n"
               "                           holding KEY and P1 folders)\n"
               "    -o busy_answer=PROGRAM:ANSWER\n"
               "                           how a refused mailbag open of PROGRAM (its\n"
               "                           process name; a trailing * matches a prefix)\n"
               "                           is answered: wait (until granted; creates up to\n"
               "                           lock_timeout), queue (up to lock_timeout, then\n"
               "                           EBUSY) or an errno name (EAGAIN, EBUSY, ETXTBSY,\n"
               "                           EACCES, EPERM) at once. Repeat for more; built\n"
               "                           in: smbd:ETXTBSY wineserver*:EAGAIN dosbox:wait\n"
               "                           dosbox-x:wait dosemu2.bin:EBUSY dosemu.bin:EBUSY,\n"
               "                           everyone else queue\n\n",
               program);
}

static int parse_log_level(const char *name)
{
        if (!name || g_str_equal(name, "info"))
                return LOG_INFO;
        if (g_str_equal(name, "debug"))
                return LOG_DEBUG;
        if (g_str_equal(name, "warning"))
                return LOG_WARNING;
        if (g_str_equal(name, "error"))
                return LOG_ERR;
        return -1;
}

/* True when @inner is a directory strictly below @outer. */
static bool path_is_below(const char *outer, const char *inner)
{
        g_autofree char *outer_real = realpath(outer, NULL);
        g_autofree char *inner_real = realpath(inner, NULL);
        if (!outer_real || !inner_real)
                return false;
        size_t len = strlen(outer_real);
        if (len == 1)
                return inner_real[1] != '\0';
        return strncmp(outer_real, inner_real, len) == 0 && inner_real[len] == '/';
}

static int check_directory(const char *what, const char *path);

/* @path made absolute and without "." or ".." components, by text alone:
 * a dead mount cannot be resolved with realpath(). */
static char *path_absolute(const char *path)
{
        g_autofree char *cwd = g_get_current_dir();
        g_autofree char *joined = g_path_is_absolute(path) ? g_strdup(path)
                                                          : g_build_filename(cwd, path, NULL);
        g_auto(GStrv) parts = g_strsplit(joined, "/", -1);
        g_autoptr(GPtrArray) kept = g_ptr_array_new();
        for (char **part = parts; *part; part++) {
                if (!**part || g_str_equal(*part, "."))
                        continue;
                if (g_str_equal(*part, "..")) {
                        if (kept->len)
                                g_ptr_array_remove_index(kept, kept->len - 1);
                        continue;
                }
                g_ptr_array_add(kept, *part);
        }
        g_ptr_array_add(kept, NULL);
        g_autofree char *rest = g_strjoinv("/", (char **)kept->pdata);
        return g_strconcat("/", rest, NULL);
}

/* The filesystem type of the topmost mount at @path ("fuse.mailbagfs"), or
 * NULL when nothing is mounted there. */
static char *mountpoint_type(const char *path)
{
        g_autofree char *absolute = path_absolute(path);
        g_autofree char *text = NULL;
        if (!g_file_get_contents("/proc/self/mountinfo", &text, NULL, NULL))
                return NULL;
        g_autoptr(GPtrArray) mounts = po_mounts_parse(text, NULL);
        const char *type = NULL;
        for (guint i = 0; mounts && i < mounts->len; i++) {
                const PoMount *mount = mounts->pdata[i];
                if (g_str_equal(mount->mount_point, absolute))
                        type = mount->fstype;
        }
        return g_strdup(type);
}

/* A daemon that died (SIGKILL, a crash) without auto_unmount leaves its
 * mount behind, answering ENOTCONN; mounting over it would hide it until
 * the new mount goes. Say what to run instead. */
static int check_mountpoint(const char *path)
{
        /* statfs always reaches a FUSE daemon; stat may be answered from
         * the kernel's attribute cache for a while after the daemon died. */
        struct statfs sfs;
        int r = statfs(path, &sfs) < 0 ? -errno : 0;
        g_autofree char *type = mountpoint_type(path);
        bool ours = type && g_str_equal(type, "fuse.mailbagfs");
        if (r == -ENOTCONN) {
                fprintf(stderr,
                        "mailbagfs: mountpoint '%s' holds a dead %s mount (its daemon has gone); "
                        "run 'fusermount3 -u -z %s' and start again\n",
                        path, ours ? "mailbagfs" : type ? type : "FUSE", path);
                return -1;
        }
        if (r == 0 && ours) {
                fprintf(stderr,
                        "mailbagfs: mountpoint '%s' is already served by a mailbagfs daemon; "
                        "unmount it first ('fusermount3 -u %s')\n",
                        path, path);
                return -1;
        }
        return check_directory("mountpoint", path);
}

static int check_directory(const char *what, const char *path)
{
        struct stat st;
        if (stat(path, &st) < 0) {
                fprintf(stderr, "mailbagfs: %s '%s': %s\n", what, path, g_strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
                fprintf(stderr, "mailbagfs: %s '%s': %s\n", what, path, g_strerror(ENOTDIR));
                return -1;
        }
        if (access(path, R_OK | X_OK) < 0) {
                fprintf(stderr, "mailbagfs: %s '%s': %s\n", what, path, g_strerror(errno));
                return -1;
        }
        return 0;
}

/* Each open file a client holds and each process holding or awaiting a
 * lease costs the daemon a descriptor: take all the kernel allows. */
static void raise_open_file_limit(void)
{
        struct rlimit limit;
        if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
                limit.rlim_cur = limit.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
                        log_warning("cannot raise the open file limit: %s", g_strerror(errno));
        }
}

static void signal_ready(int ready_fd)
{
        if (ready_fd < 0)
                return;
        if (write(ready_fd, "R", 1) != 1)
                log_warning("cannot signal readiness on descriptor %d: %s", ready_fd,
                            g_strerror(errno));
        close(ready_fd);
}

static void mailbags_name_gone(void *user_data, uint64_t parent_node, const char *name)
{
        kernel_cache_forget_name(user_data, parent_node, name);
}

static int serve(struct fuse_session *session, const struct fuse_cmdline_opts *cmdline)
{
        if (cmdline->singlethread)
                return fuse_session_loop(session);

        struct fuse_loop_config *loop = fuse_loop_cfg_create();
        fuse_loop_cfg_set_clone_fd(loop, (unsigned)cmdline->clone_fd);
        /* Unset, fuse_parse_cmdline leaves (unsigned)-1 in these, which
         * libfuse's setters reject noisily; keep its defaults then. */
        if (cmdline->max_idle_threads != UINT_MAX)
                fuse_loop_cfg_set_idle_threads(loop, cmdline->max_idle_threads);
        if (cmdline->max_threads > 0 && cmdline->max_threads <= 100000)
                fuse_loop_cfg_set_max_threads(loop, cmdline->max_threads);
        int r = fuse_session_loop_mt(session, loop);
        fuse_loop_cfg_destroy(loop);
        return r;
}

int main(int argc, char *argv[])
{
        struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
        struct fuse_cmdline_opts cmdline = {0};
        Options options = {
                .cache_timeout = 1.0, .lock_timeout = 10.0, .hold_warning = 600,
                .max_postoffices = MAILBAGS_POSTOFFICES_MAX, .ready_fd = -1};
        MailbagsConfig mailbags_config = {0};
        bool mailbags_ready = false;
        Mailbagfs fs = {.backing = {.root_fd = -1}};
        struct fuse_session *session = NULL;
        KernelCache *kernel_cache = NULL;
        /* Declared here, not where it is set: the error paths jump past. */
        g_autofree char *fsname = NULL;
        g_autoptr(GError) error = NULL;
        int status = 1;

        if (fuse_opt_parse(&args, &options, option_spec, option_take_backing) < 0 ||
            options.bad_option)
                goto out_free_args;
        /* Checked before libfuse sees the mountpoint, so a user gets the
         * same kind of message for either directory. */
        if (options.mountpoint && check_mountpoint(options.mountpoint) < 0)
                goto out_free_args;
        if (fuse_parse_cmdline(&args, &cmdline) < 0)
                goto out_free_args;

        if (cmdline.show_help) {
                print_usage(argv[0]);
                fuse_cmdline_help();
                fuse_lowlevel_help();
                status = 0;
                goto out_free_args;
        }
        if (cmdline.show_version) {
                printf("mailbagfs version %s\n", MAILBAGFS_VERSION);
                /* libfuse's part is printed by a child process. */
                fflush(stdout);
                fuse_lowlevel_version();
                status = 0;
                goto out_free_args;
        }

        int log_level = parse_log_level(options.log_level);
        if (log_level < 0) {
                fprintf(stderr, "mailbagfs: unknown log_level '%s' (error, warning, info, debug)\n",
                        options.log_level);
                goto out_free_args;
        }
        log_setup(false, cmdline.debug ? LOG_DEBUG : log_level);

        if (!options.backing || !cmdline.mountpoint) {
                fprintf(stderr, "mailbagfs: %s\nusage: %s [options] BACKING MOUNTPOINT (see --help)\n",
                        options.backing ? "no mountpoint given" : "no backing directory given",
                        argv[0]);
                goto out_free_args;
        }
        if (options.cache_timeout < 0) {
                fprintf(stderr, "mailbagfs: cache_timeout must not be negative\n");
                goto out_free_args;
        }
        if (options.lock_timeout < 0 || options.lock_timeout > 3600) {
                fprintf(stderr, "mailbagfs: lock_timeout must be between 0 and 3600 seconds\n");
                goto out_free_args;
        }
        if (options.max_postoffices < 1 || options.max_postoffices > 1000000 ||
            options.max_postoffices != (double)(guint)options.max_postoffices) {
                fprintf(stderr, "mailbagfs: max_postoffices must be a whole number from 1 to "
                                "1000000\n");
                goto out_free_args;
        }
        if (options.hold_warning < 0 || options.hold_warning > 604800) {
                fprintf(stderr, "mailbagfs: hold_warning must be between 0 and 604800 seconds\n");
                goto out_free_args;
        }
        if (policy_v20_mode_parse(options.v20, &mailbags_config.v20_mode) < 0) {
                fprintf(stderr, "mailbagfs: unknown v20 mode '%s' (any, all, none)\n", options.v20);
                goto out_free_args;
        }
        if (options.mode && !g_str_equal(options.mode, PO_STATUS_MODE_ENFORCE) &&
            !g_str_equal(options.mode, PO_STATUS_MODE_OBSERVE)) {
                fprintf(stderr, "mailbagfs: unknown mode '%s' (enforce, observe)\n", options.mode);
                goto out_free_args;
        }
        mailbags_config.observe = options.mode && g_str_equal(options.mode, PO_STATUS_MODE_OBSERVE);
        guint64 trail_mib = 16;
        if (options.trail && (!g_ascii_string_to_unsigned(options.trail, 10, 0, 65536, &trail_mib,
                                                          NULL))) {
                fprintf(stderr, "mailbagfs: trail must be a whole number of MiB from 0 to 65536\n");
                goto out_free_args;
        }
        mailbags_config.trail_bytes = trail_mib * 1024 * 1024;
        if (options.trail_node) {
                bool valid = options.trail_node[0] && options.trail_node[0] != '.' &&
                             strlen(options.trail_node) <= 64;
                for (const char *c = options.trail_node; valid && *c; c++)
                        valid = g_ascii_isalnum(*c) || *c == '.' || *c == '-' || *c == '_';
                if (!valid) {
                        fprintf(stderr, "mailbagfs: trail_node must be 1 to 64 of A-Z a-z 0-9 . - _, "
                                        "not starting with '.'\n");
                        goto out_free_args;
                }
        }
        mailbags_config.trail_node = options.trail_node;
        if (options.passthrough && !g_str_equal(options.passthrough, "0") &&
            !g_str_equal(options.passthrough, "1")) {
                fprintf(stderr, "mailbagfs: passthrough must be 0 or 1\n");
                goto out_free_args;
        }
        atomic_init(&fs.passthrough, !options.passthrough || g_str_equal(options.passthrough, "1"));
        mailbags_config.profile_path = options.profile;
        if (options.postoffices) {
                g_ptr_array_add(options.postoffices, NULL);
                mailbags_config.only_postoffices = (char **)options.postoffices->pdata;
        }
        /* 0 means "built-in default" to the lease manager, so a zero
         * timeout (never wait) is passed as one millisecond. */
        mailbags_config.lock_timeout_ms = MAX(1, (int)(options.lock_timeout * 1000));
        mailbags_config.exclusive_timeout_ms = MIN(2000, mailbags_config.lock_timeout_ms);
        mailbags_config.hold_warning_ms = (int)(options.hold_warning * 1000);
        mailbags_config.max_postoffices = (guint)options.max_postoffices;
        if (check_directory("backing directory", options.backing) < 0)
                goto out_free_args;
        if (path_is_below(options.backing, cmdline.mountpoint)) {
                fprintf(stderr, "mailbagfs: mountpoint '%s' lies inside the backing directory '%s'\n",
                        cmdline.mountpoint, options.backing);
                goto out_free_args;
        }

        int r = backing_open(&fs.backing, options.backing);
        struct stat root_st;
        if (r == 0 && fstat(fs.backing.root_fd, &root_st) < 0)
                r = -errno;
        if (r < 0) {
                fprintf(stderr, "mailbagfs: backing directory '%s': %s\n", options.backing,
                        g_strerror(-r));
                goto out_free_args;
        }
        /* A cluster client that caches what other nodes change would let
         * a lease holder append at an old size: mail lost. Refused here,
         * before anything is served. */
        char *incoherent = coherence_check(fs.backing.root_fd);
        if (incoherent) {
                fprintf(stderr, "mailbagfs: backing directory '%s': refused: %s\n", options.backing,
                        incoherent);
                g_free(incoherent);
                goto out_free_fs;
        }
        if (mailbags_init(&fs.mailbags, &fs.backing, &mailbags_config, &error) < 0) {
                fprintf(stderr, "mailbagfs: %s\n", error ? error->message : "cannot set up locking");
                goto out_free_fs;
        }
        mailbags_ready = true;
        if (mailbags_config.observe)
                log_warning("observe mode: no open waits or is refused; the overlaps enforcing "
                            "would stop are counted and logged (user.mailbag.stats)");
        fs.inodes = inode_table_new(&root_st);
        g_rw_lock_init(&fs.names_lock);
        g_mutex_init(&fs.privileges_lock);
        fs.entry_timeout = options.cache_timeout;
        fs.dirs = node_cache_new(options.cache_timeout);
        fs.nodes = node_cache_new(options.cache_timeout);
        fs.attr_timeout = options.cache_timeout;
        fs.chown_created = geteuid() == 0;
        raise_open_file_limit();
        /* Modes arrive already masked by the client's umask. */
        umask(0);

        /* Permissions are the backing files' own, checked by the kernel for
         * every client; the mount shows its backing directory as source,
         * absolute, so tools (po-check --samba) can tell shares of it. */
        char *backing_absolute = path_absolute(options.backing);
        fsname = g_strdup_printf("-ofsname=%s", backing_absolute);
        g_free(backing_absolute);
        fuse_opt_add_arg(&args, "-odefault_permissions");
        fuse_opt_add_arg(&args, fsname);
        fuse_opt_add_arg(&args, "-osubtype=mailbagfs");

        session = fuse_session_new(&args, &mailbagfs_ops, sizeof(mailbagfs_ops), &fs);
        if (!session)
                goto out_free_fs;
        if (fuse_set_signal_handlers(session) < 0)
                goto out_destroy_session;
        if (fuse_session_mount(session, cmdline.mountpoint) < 0)
                goto out_remove_handlers;
        if (fuse_daemonize(cmdline.foreground) < 0)
                goto out_unmount;
        if (!cmdline.foreground)
                log_set_syslog(true);

        /* Threads do not survive fuse_daemonize()'s fork: everything that
         * starts one (each postoffice's lease manager, the cache thread)
         * starts here, in the process that serves. */
        log_info("serving %s at %s", options.backing, cmdline.mountpoint);
        kernel_cache = kernel_cache_new(session);
        fs.kernel_cache = kernel_cache;
        if (mailbags_start(&fs.mailbags, mailbags_name_gone, kernel_cache) == 0)
                log_warning("no postoffice in %s yet (a folder holding KEY and %s folders): "
                            "one is protected as soon as it is made",
                            options.backing, po_profile_lock_folder(fs.mailbags.profile));
        signal_ready(options.ready_fd);
        int served = serve(session, &cmdline);
        /* libfuse reports the signal that ended the loop: a stop asked
         * for (systemctl stop, Ctrl-C) is a clean exit. */
        status = served == 0 || served == SIGTERM || served == SIGINT || served == SIGHUP ? 0 : 1;
        log_info("unmounting %s", cmdline.mountpoint);
        /* Stopping the lease manager answers the requests still waiting
         * for a lease; the session must still exist for those replies. */
        mailbags_stop(&fs.mailbags);

out_unmount:
        fuse_session_unmount(session);
        /* After the unmount: a queued invalidation may wait for a folder
         * lock that a request nobody will read holds; the unmount ends
         * such requests, and the invalidation with them. */
        g_clear_pointer(&kernel_cache, kernel_cache_free);
        fs.kernel_cache = NULL;
out_remove_handlers:
        fuse_remove_signal_handlers(session);
out_destroy_session:
        fuse_session_destroy(session);
out_free_fs:
        if (mailbags_ready)
                mailbags_clear(&fs.mailbags);
        g_clear_pointer(&fs.dirs, node_cache_free);
        g_clear_pointer(&fs.nodes, node_cache_free);
        g_clear_pointer(&fs.inodes, inode_table_free);
        g_rw_lock_clear(&fs.names_lock);
        g_mutex_clear(&fs.privileges_lock);
        backing_close(&fs.backing);
out_free_args:
        free(cmdline.mountpoint);
        g_free(options.backing);
        g_free(options.mountpoint);
        g_free(options.log_level);
        g_free(options.profile);
        g_free(options.v20);
        g_free(options.mode);
        g_free(options.trail);
        g_free(options.trail_node);
        g_free(options.passthrough);
        g_clear_pointer(&options.postoffices, g_ptr_array_unref);
        fuse_opt_free_args(&args);
        return status;
}
