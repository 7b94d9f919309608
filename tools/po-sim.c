/* po-sim - runs the mail transfer programs of a postoffice against it, as
 * separate processes, and counts what happened to the mail.
 *
 *   po-sim DIR [--also DIR2] [--messages N] [--consumers SPEC] [--producers K] [--seed S]
 *          [--kill-consumers-every MS] [--restart-workers] [--json] [--profile PATH]
 *
 * DIR is a postoffice (mkpo makes one): a raw directory, or a postoffice a
 * mailbagfs mount protects, at its root or in a subfolder (told apart by
 * the daemon's user.mailbag.stats attribute on DIR itself). The programs
 * follow what the Microsoft KB documents:
 * - consumers empty INQUEUE3: External 3.x (P1/INQUEUE3.0LK held open
 *   DENY_ALL, Q103960, Q119642), External with -V20 (lock files
 *   P1/INQUEUE3.0NN created, detected, deleted, Q131422, Q119642) and a
 *   gateway (opens the queue READ|DENY_READ, oblivious to lock files,
 *   Q103960). Each handles a record in the documented order (Q136379) and
 *   reports [021] when the P1 or MAI is missing (Q103960); see
 *   po-sim-consumer.c;
 * - producers, the MS Mail Connector, take message numbers from CONTROL.GLB
 *   (Q99204), write the MAI and P1 (Q100826) and queue the record inside
 *   the KEY section, failing with [008] when they cannot get it in time
 *   (Q237695); see po-sim-producer.c.
 * On a raw directory, what one network layer enforces among programs of
 * the same protocol is enforced with stand-in locks (po-sim-layer.c), so
 * every collision is a cross-protocol one, as in Q103960. A layer would
 * also refuse some cross-protocol opens (the "error code=32" on
 * INQUEUE3.KEY in Q103960's log); Mail 3.0 mishandles that failure and
 * collides anyway (Q103960), so po-sim leaves those refusals out
 * (inferred). Through mailbagfs the very same code takes no lock of its
 * own: the daemon's waits are the only exclusion. A mount that only
 * observes (its root's user.mailbag.mode says "observe") excludes
 * nobody, so through it po-sim takes the stand-ins as on a raw directory
 * and reports mode "observe".
 *
 * Consumers count the queue sessions they begin while a consumer of
 * another protocol is inside one (cross_protocol_overlaps): zero through
 * an enforcing mount, and never more than an observing daemon's overlaps
 * (see sim_consumer_run).
 *
 * Record fields, KEY bitmap position and the delivery order inside a
 * mailbag are inferred (POSTOFFICE.md), as is the mapping of a message to
 * its recipient: the P1 format is unpublished (Q130322), so message n goes
 * to the n mod U'th user mailbag. Time is scaled down: a refused or idle
 * consumer tries again within --poll-ms (real programs poll on a scale of
 * seconds, inferred), a session handles --batch records, and producers hold back
 * while the queue is three quarters full (po-sim-producer.c).
 *
 * --also DIR2 names the same postoffice through another path (a second
 * mailbagfs mount of the same share, as another node of a cluster serves
 * it): the even-numbered workers of each kind work through DIR2, the
 * others through DIR. On a raw directory the stand-in locks are shared by
 * both paths (one layer), so the collisions left are still the
 * cross-protocol ones.
 *
 * The parent forks the workers, tells consumers when the producers are
 * done (the done pipe reaches EOF), waits for all of them under one
 * deadline, kills them all on any failure, kills and restarts consumers
 * and restarts workers cut off from the share when asked
 * (po-sim-supervise.c), and then counts the mail from the files
 * (po-sim-tally.c). Exit status: 0 when the run completed
 * (collisions or not), 1 on a failure (a worker error, the deadline, a
 * queue left undrained), 2 on bad arguments.
 */
#include "po-sim.h"

#include "glb.h"
#include "mailbag.h"
#include "po-file.h"
#include "status-attr.h"
#include "status-line.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIM_MAX_MESSAGES 1000000
/* Message numbers beyond --messages that producers may take: each
 * producer cut off by a dead mount wastes at most one (po-sim-supervise.c). */
#define SIM_NUMBER_SLACK 4096

static const char *const role_names[SIM_ROLE_COUNT] = {
        [SIM_ROLE_EXTERNAL] = "external",
        [SIM_ROLE_V20] = "v20",
        [SIM_ROLE_GATEWAY] = "gateway",
        [SIM_ROLE_PRODUCER] = "producer",
        [SIM_ROLE_DELIVERER] = "deliverer",
};

const char *sim_role_name(SimRole role)
{
        return role < SIM_ROLE_COUNT ? role_names[role] : "?";
}

/* "external=2,v20=2,gateway=2": counts per consumer kind, in any order. */
static bool sim_parse_consumers(const char *spec, unsigned counts[SIM_ROLE_COUNT],
                                GError **error)
{
        memset(counts, 0, SIM_ROLE_COUNT * sizeof counts[0]);
        g_auto(GStrv) items = g_strsplit(spec, ",", -1);
        unsigned total = 0;
        for (char **item = items; *item; item++) {
                g_auto(GStrv) pair = g_strsplit(g_strstrip(*item), "=", 2);
                guint64 n = 0;
                int role = -1;
                for (int r = 0; r < SIM_ROLE_PRODUCER && pair[0]; r++)
                        if (g_ascii_strcasecmp(pair[0], role_names[r]) == 0)
                                role = r;
                if (role < 0 || !pair[1] ||
                    !g_ascii_string_to_unsigned(pair[1], 10, 0, SIM_MAX_CONSUMERS_PER_ROLE, &n,
                                                NULL)) {
                        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                                    "--consumers: \"%s\" is not KIND=N with KIND external, v20 "
                                    "or gateway and N at most %d", *item,
                                    SIM_MAX_CONSUMERS_PER_ROLE);
                        return false;
                }
                counts[role] = n;
        }
        for (int r = 0; r < SIM_ROLE_PRODUCER; r++)
                total += counts[r];
        if (total == 0) {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                            "--consumers: at least one consumer is needed to empty the queue");
                return false;
        }
        return true;
}


/* O_NONBLOCK: a FIFO in place of CONTROL.GLB must not hold po-sim before
 * its deadline even starts; po_file_read_fd() then refuses anything but a
 * regular file. (The KEY and MBG files are read the same way before the
 * run, by sim_tally_before(); a worker held by a file replaced during the
 * run is killed at the deadline.) */
static bool sim_read_next_message(const SimContext *ctx, uint32_t *next, GError **error)
{
        po_auto_fd fd = sim_open(ctx, "GLB/CONTROL.GLB", O_RDONLY | O_NONBLOCK);
        if (fd < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-fd),
                            "%s/GLB/CONTROL.GLB: %s", ctx->root, g_strerror(-fd));
                return false;
        }
        g_autofree guint8 *data = NULL;
        gsize len = 0;
        PoControl control;
        if (!po_file_read_fd(fd, PO_GLB_CONTROL_SIZE, "GLB/CONTROL.GLB", &data, &len, error) ||
            !po_glb_control_parse(data, len, "GLB/CONTROL.GLB", &control, error))
                return false;
        *next = control.next_message;
        return true;
}

static void sim_print_report(const SimTally *tally, const SimContext *ctx,
                             const unsigned counts[SIM_ROLE_COUNT], const SimOutcome *run,
                             bool json, const char *failure)
{
        SimShared *shared = ctx->shared;
        unsigned missing = atomic_load(&shared->missing_routing);
        unsigned contention = atomic_load(&shared->contention_failures);
        double rate = run->seconds > 0 ? tally->queued / run->seconds : 0;
        const char *mode = ctx->also && (ctx->raw != ctx->also_raw ||
                                         ctx->observed != ctx->also_observed) ? "mixed"
                : ctx->raw ? "raw" : ctx->observed ? "observe" : "mailbagfs";
        unsigned deaths_in_hand = run->kills_in_hand + run->io_in_hand;
        if (json) {
                printf("{\"mode\": \"%s\", \"split\": %s, \"external\": %u, \"v20\": %u, "
                       "\"gateway\": %u, "
                       "\"producers\": %u, \"queued\": %u, \"delivered\": %u, \"duplicates\": %u, "
                       "\"duplicate_copies\": %u, \"duplicates_explained\": %u, "
                       "\"duplicates_unexplained\": %u, \"lost\": %u, \"still_queued\": %u, "
                       "\"returned\": %u, \"refused\": %u, \"interrupted\": %u, "
                       "\"missing_routing\": %u, \"missing_routing_other\": %u, "
                       "\"contention_failures\": %u, \"contention_delivery\": %u, "
                       "\"delivery_refusals\": %u, \"deliverers\": %u, \"direct\": %u, "
                       "\"direct_delivered\": %u, \"direct_duplicates\": %u, "
                       "\"direct_returned\": %u, \"direct_lost\": %u, "
                       "\"kills\": %u, \"kills_in_hand\": %u, \"io_exits\": %u, "
                       "\"io_in_hand\": %u, \"restarts\": %u, "
                       "\"full_mailbags\": %u, \"cross_protocol_overlaps\": %u, "
                       "\"seconds\": %.3f, \"messages_per_second\": %.0f, \"ok\": %s}\n",
                       mode, ctx->also ? "true" : "false", counts[SIM_ROLE_EXTERNAL],
                       counts[SIM_ROLE_V20], counts[SIM_ROLE_GATEWAY], counts[SIM_ROLE_PRODUCER],
                       tally->queued, tally->delivered, tally->duplicates,
                       tally->duplicate_copies, tally->duplicates_explained,
                       tally->duplicates_unexplained, tally->lost, tally->still_queued,
                       tally->returned, atomic_load(&shared->refused), tally->interrupted,
                       missing, tally->missing_other, contention,
                       atomic_load(&shared->contention_delivery),
                       atomic_load(&shared->delivery_refusals), counts[SIM_ROLE_DELIVERER],
                       tally->direct, tally->direct_delivered, tally->direct_duplicates,
                       tally->direct_returned, tally->direct_lost, run->kills,
                       run->kills_in_hand, run->io_exits, run->io_in_hand, run->restarts,
                       tally->full_mailbags, atomic_load(&shared->cross_protocol_overlaps),
                       run->seconds, rate, failure ? "false" : "true");
                return;
        }
        printf("po-sim: %s%s%s (%s): %u External, %u -V20, %u gateway consumers, %u producers, "
               "%u deliverers\n",
               ctx->root, ctx->also ? " and " : "", ctx->also ? ctx->also : "",
               g_str_equal(mode, "raw")       ? "raw directory"
               : g_str_equal(mode, "mixed")   ? "mixed: raw, observed or enforced"
               : g_str_equal(mode, "observe") ? "mailbagfs mount, observe mode"
                                              : "mailbagfs mount",
               counts[SIM_ROLE_EXTERNAL], counts[SIM_ROLE_V20], counts[SIM_ROLE_GATEWAY],
               counts[SIM_ROLE_PRODUCER], counts[SIM_ROLE_DELIVERER]);
        printf("  queued                    %8u\n", tally->queued);
        printf("  delivered exactly once    %8u\n", tally->delivered);
        printf("  duplicates                %8u  (%u extra copies)\n", tally->duplicates,
               tally->duplicate_copies);
        if (run->kills || run->io_exits) {
                printf("    in hand when killed     %8u  (%u deaths with a message in hand)\n",
                       tally->duplicates_explained, deaths_in_hand);
                printf("    unexplained             %8u\n", tally->duplicates_unexplained);
        }
        printf("  lost                      %8u\n", tally->lost);
        printf("  missing routing [021]     %8u", missing);
        if (run->kills || run->io_exits)
                printf("  (%u not after a death)", tally->missing_other);
        printf("\n");
        printf("  contention failures [008] %8u  (%u never queued, %u delivering to user "
               "mailbags)\n", contention, atomic_load(&shared->refused),
               atomic_load(&shared->contention_delivery));
        printf("  sharing violations        %8u  (answered to deliveries into user mailbags)\n",
               atomic_load(&shared->delivery_refusals));
        printf("  cross-protocol overlaps   %8u  (queue sessions begun while another "
               "protocol's consumer was inside)\n",
               atomic_load(&shared->cross_protocol_overlaps));
        if (counts[SIM_ROLE_DELIVERER]) {
                printf("  delivered straight        %8u  (by %u deliverers, not queued)\n",
                       tally->direct, counts[SIM_ROLE_DELIVERER]);
                printf("    exactly once            %8u\n", tally->direct_delivered);
                printf("    duplicates              %8u\n", tally->direct_duplicates);
                printf("    returned [008]          %8u\n", tally->direct_returned);
                printf("    lost                    %8u\n", tally->direct_lost);
        }
        printf("  mailbags at 4096 records  %8u\n", tally->full_mailbags);
        if (tally->still_queued)
                printf("  still queued              %8u\n", tally->still_queued);
        if (run->kills || run->io_exits || run->restarts) {
                printf("  consumers killed          %8u  (%u with a message in hand)\n",
                       run->kills, run->kills_in_hand);
                printf("  I/O failures restarted    %8u  (%u with a message in hand)\n",
                       run->io_exits, run->io_in_hand);
                printf("  restarts                  %8u\n", run->restarts);
                printf("  interrupted while queued  %8u  (producer died, record never queued)\n",
                       tally->interrupted);
        }
        printf("  wall time                 %8.2f s\n", run->seconds);
        printf("  messages/s                %8.0f\n", rate);
        if (failure)
                printf("po-sim: FAILED: %s\n", failure);
}

/* Whether @a and @b are the same postoffice: GLB/CONTROL.GLB is one file
 * (mailbagfs reports the backing store's inode numbers, so two mounts of
 * one share agree; a copy would not). */
static bool sim_same_postoffice(int a_fd, const char *a, int b_fd, const char *b,
                                GError **error)
{
        struct stat sa, sb;
        if (fstatat(a_fd, "GLB/CONTROL.GLB", &sa, 0) < 0 ||
            fstatat(b_fd, "GLB/CONTROL.GLB", &sb, 0) < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "GLB/CONTROL.GLB: %s", g_strerror(errno));
                return false;
        }
        if (sa.st_ino != sb.st_ino || sa.st_size != sb.st_size) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                            "--also: %s is not the postoffice %s is (GLB/CONTROL.GLB is inode "
                            "%ju there and %ju here)", b, a, (uintmax_t)sb.st_ino,
                            (uintmax_t)sa.st_ino);
                return false;
        }
        return true;
}

/* Raw or mounted: through mailbagfs the postoffice folder itself carries
 * the daemon's status attributes, wherever it is in the mount. */
static bool sim_is_raw(const char *root)
{
        bool raw = !status_attr_is_protected(root);
        g_autofree char *mount = raw ? status_attr_enclosing_mount(root) : NULL;
        if (mount)
                fprintf(stderr, "po-sim: warning: %s is inside the mailbagfs mount %s but is not a "
                        "postoffice it protects: running raw\n", root, mount);
        return raw;
}

/* Through a mount that only observes nothing keeps programs of one
 * protocol apart: po-sim's stand-ins then do, as a share's one layer
 * would. Read once, at the start: a switch to enforce during the run
 * leaves them taken, which costs an enforcing mount nothing. */
static bool sim_is_observed(const char *root, bool raw)
{
        if (raw)
                return false;
        g_autofree char *mode = status_attr_mode(root);
        if (strcmp(mode, PO_STATUS_MODE_OBSERVE) == 0)
                return true;
        if (strcmp(mode, PO_STATUS_MODE_ENFORCE) != 0) {
                g_autofree char *shown = po_status_escape_controls(mode);
                fprintf(stderr, "po-sim: warning: %s: the mount's mode \"%s\" is not known here: "
                        "taken as %s\n", root, shown, PO_STATUS_MODE_ENFORCE);
        }
        return false;
}

#define SIM_USAGE "usage: po-sim DIR [--also DIR2] [--messages N] [--consumers SPEC] " \
        "[--producers K] [--direct-messages N] [--deliverers K] [--seed S] " \
        "[--kill-consumers-every MS] [--restart-workers] [--json] [--profile PATH]\n"

int main(int argc, char **argv)
{
        gint messages = 1000, producers = 2, batch = 64, key_attempts = 10, poll_ms = 40;
        gint direct_messages = 0, deliverers = 2, delivery_ms = 1;
        gint kill_every_ms = 0;
        gint64 seed = 1;
        double timeout = 300;
        gboolean json = FALSE, restart_workers = FALSE;
        g_autofree char *consumers_spec = NULL;
        g_autofree char *profile_path = NULL;
        g_autofree char *also = NULL;
        GOptionEntry entries[] = {
                { "messages", 'm', 0, G_OPTION_ARG_INT, &messages,
                  "Messages the producers add to the queue (default 1000)", "N" },
                { "consumers", 'c', 0, G_OPTION_ARG_STRING, &consumers_spec,
                  "Consumers per kind (default external=2,v20=2,gateway=2)", "SPEC" },
                { "producers", 'p', 0, G_OPTION_ARG_INT, &producers,
                  "MS Mail Connector producers (default 2)", "K" },
                { "direct-messages", 0, 0, G_OPTION_ARG_INT, &direct_messages,
                  "Messages the deliverers deliver straight into user mailbags (default 0)",
                  "N" },
                { "deliverers", 0, 0, G_OPTION_ARG_INT, &deliverers,
                  "External instances and Connector MTAs delivering straight into user "
                  "mailbags (default 2)", "K" },
                { "seed", 's', 0, G_OPTION_ARG_INT64, &seed,
                  "Seed of the workers' randomness (default 1)", "S" },
                { "json", 'j', 0, G_OPTION_ARG_NONE, &json,
                  "Print the result as one JSON object", NULL },
                { "batch", 'b', 0, G_OPTION_ARG_INT, &batch,
                  "Records a consumer handles per session (default 64)", "B" },
                { "poll-ms", 0, 0, G_OPTION_ARG_INT, &poll_ms,
                  "A refused or idle consumer tries again within this (default 40)", "MS" },
                { "key-attempts", 0, 0, G_OPTION_ARG_INT, &key_attempts,
                  "Tries a producer makes for the KEY section before [008] (default 10)", "A" },
                { "delivery-ms", 0, 0, G_OPTION_ARG_INT, &delivery_ms,
                  "Time a delivery holds the mailbag's files open, between reading the KEY "
                  "and writing the record (default 1)", "MS" },
                { "timeout", 't', 0, G_OPTION_ARG_DOUBLE, &timeout,
                  "Deadline of the whole run in seconds (default 300)", "SEC" },
                { "profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_path,
                  "The postoffice's profile (default: built in)", "PATH" },
                { "also", 0, 0, G_OPTION_ARG_FILENAME, &also,
                  "The same postoffice through another path (another mount of the share): "
                  "even-numbered workers of each kind use it", "DIR2" },
                { "kill-consumers-every", 0, 0, G_OPTION_ARG_INT, &kill_every_ms,
                  "SIGKILL a random consumer about this often and start it again "
                  "(default 0: never)", "MS" },
                { "restart-workers", 0, 0, G_OPTION_ARG_NONE, &restart_workers,
                  "Start a worker again that failed on the share (ENOTCONN, EIO, ESTALE)",
                  NULL },
                G_OPTION_ENTRY_NULL,
        };
        g_autoptr(GOptionContext) context = g_option_context_new(
                "DIR - run mail transfer programs against a postoffice and count the mail");
        g_option_context_add_main_entries(context, entries, NULL);
        g_autoptr(GError) error = NULL;
        unsigned counts[SIM_ROLE_COUNT];
        if (!g_option_context_parse(context, &argc, &argv, &error) ||
            !sim_parse_consumers(consumers_spec ? consumers_spec : "external=2,v20=2,gateway=2",
                                 counts, &error)) {
                fprintf(stderr, "po-sim: %s\n", error->message);
                return 2;
        }
        const char *bad = argc != 2 ? "exactly one postoffice directory is needed"
                : messages < 0 || messages > SIM_MAX_MESSAGES ? "--messages is out of range"
                : producers < 0 || producers > SIM_MAX_PRODUCERS ? "--producers is out of range"
                : messages > 0 && producers == 0 ? "--messages needs at least one producer"
                : direct_messages < 0 || direct_messages > SIM_MAX_MESSAGES
                ? "--direct-messages is out of range"
                : deliverers < 0 || deliverers > SIM_MAX_DELIVERERS ? "--deliverers is out of range"
                : direct_messages > 0 && deliverers == 0
                ? "--direct-messages needs at least one deliverer"
                : batch < 1 || batch > PO_MAILBAG_MAX_RECORDS ? "--batch is out of range"
                : poll_ms < 1 || poll_ms > 10000 ? "--poll-ms is out of range"
                : key_attempts < 1 || key_attempts > 20 ? "--key-attempts is out of range"
                : delivery_ms < 0 || delivery_ms > 1000 ? "--delivery-ms is out of range"
                : kill_every_ms < 0 || kill_every_ms > 3600000
                ? "--kill-consumers-every is out of range"
                : !(timeout > 0 && timeout <= 86400) ? "--timeout is out of range" : NULL;
        if (bad) {
                fprintf(stderr, "po-sim: %s\n" SIM_USAGE, bad);
                return 2;
        }
        counts[SIM_ROLE_PRODUCER] = producers;
        /* Deliverers are started only when they have mail to deliver. */
        counts[SIM_ROLE_DELIVERER] = direct_messages > 0 ? deliverers : 0;
        g_autoptr(PoProfile) profile = profile_path ? po_profile_load(profile_path, &error)
                                                    : po_profile_new_default();
        if (profile == NULL) {
                fprintf(stderr, "po-sim: %s\n", error->message);
                return 2;
        }
        g_autofree char *queue_key = po_profile_key_path(profile, SIM_QUEUE);
        g_autofree char *queue_mbg = po_profile_mbg_path(profile, SIM_QUEUE);
        g_autofree char *queue_session_lock = po_profile_session_lock_path(profile, SIM_QUEUE, "0LK");

        const char *root = argv[1];
        bool raw = sim_is_raw(root);
        bool also_raw = also ? sim_is_raw(also) : false;
        bool observed = sim_is_observed(root, raw);
        bool also_observed = also && sim_is_observed(also, also_raw);
        int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0) {
                fprintf(stderr, "po-sim: %s: %s\n", root, g_strerror(errno));
                return 2;
        }
        if (also) {
                po_auto_fd also_fd = open(also, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (also_fd < 0)
                        g_set_error(&error, G_FILE_ERROR, g_file_error_from_errno(errno),
                                    "%s: %s", also, g_strerror(errno));
                else
                        sim_same_postoffice(root_fd, root, also_fd, also, &error);
                if (error) {
                        fprintf(stderr, "po-sim: %s\n", error->message);
                        close(root_fd);
                        return 2;
                }
        }
        g_autoptr(GPtrArray) recipients = sim_list_recipients(root, &error);
        if (recipients && recipients->len == 0)
                g_set_error(&error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                            "%s: no user mailbags in MBG/ to deliver to", root);
        SimContext ctx = {
                .root = root,
                .root_fd = root_fd,
                .profile = profile,
                .queue_key = queue_key,
                .queue_mbg = queue_mbg,
                .queue_session_lock = queue_session_lock,
                .raw = raw,
                .observed = observed,
                .also = also,
                .also_raw = also_raw,
                .also_observed = also_observed,
                .recipients = recipients,
                .batch = batch,
                .poll_us = (unsigned)poll_ms * 1000,
                .key_attempts = key_attempts,
                .delivery_hold_us = (unsigned)delivery_ms * 1000,
                .done_fd = -1,
        };
        SimBefore before = { 0 };
        uint32_t first_number = 0;
        if (error || !sim_tally_before(&ctx, &before, &error) ||
            !sim_read_next_message(&ctx, &first_number, &error)) {
                fprintf(stderr, "po-sim: %s\n", error->message);
                sim_before_clear(&before);
                close(root_fd);
                return 2;
        }

        int status = 1;
        char *stand_in_dir = NULL;
        uint32_t capacity = (uint32_t)messages + (uint32_t)direct_messages + SIM_NUMBER_SLACK;
        size_t shared_size = sizeof(SimShared) + capacity;
        SimShared *shared = mmap(NULL, shared_size, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shared == MAP_FAILED) {
                fprintf(stderr, "po-sim: mmap: %s\n", g_strerror(errno));
                goto out_before;
        }
        shared->first_number = first_number;
        shared->capacity = capacity;
        ctx.shared = shared;

        if ((ctx.raw || ctx.observed || (also && (also_raw || also_observed))) &&
            !(stand_in_dir = g_dir_make_tmp("po-sim-locks-XXXXXX", &error))) {
                fprintf(stderr, "po-sim: %s\n", error->message);
                goto out_shared;
        }
        ctx.stand_in_dir = stand_in_dir;

        SimPlan plan = {
                .counts = counts,
                .messages = messages,
                .direct_messages = direct_messages,
                .seed = seed,
                .restart_workers = restart_workers,
                .kill_every_ms = kill_every_ms,
        };
        if (pipe2(plan.done_pipe, O_CLOEXEC) < 0) {
                fprintf(stderr, "po-sim: pipe: %s\n", g_strerror(errno));
                goto out_stand_in;
        }
        /* The read end stays open in the parent for workers started again. */
        ctx.done_fd = plan.done_pipe[0];
        ctx.deadline_us = g_get_monotonic_time() + (gint64)(timeout * G_USEC_PER_SEC);
        SimOutcome outcome;
        sim_run(&ctx, &plan, &outcome);
        close(plan.done_pipe[0]);

        SimTally tally;
        if (!sim_tally_after(&ctx, &before, outcome.in_hand_at_death, &tally, &error)) {
                fprintf(stderr, "po-sim: counting the mail: %s\n", error->message);
                sim_outcome_clear(&outcome);
                goto out_stand_in;
        }
        const char *failure = outcome.failure;
        if (!failure && tally.still_queued > 0)
                failure = "the queue was not drained";
        sim_print_report(&tally, &ctx, counts, &outcome, json, failure);
        sim_outcome_clear(&outcome);
        status = failure ? 1 : 0;

out_stand_in:
        if (stand_in_dir) {
                g_autoptr(GDir) dir = g_dir_open(stand_in_dir, 0, NULL);
                for (const char *name; dir && (name = g_dir_read_name(dir)) != NULL;) {
                        g_autofree char *path = g_build_filename(stand_in_dir, name, NULL);
                        unlink(path);
                }
                rmdir(stand_in_dir);
                g_free(stand_in_dir);
        }
out_shared:
        munmap(shared, shared_size);
out_before:
        sim_before_clear(&before);
        close(root_fd);
        return status;
}
