/* freeze.c - an operator's hold on a whole postoffice (see freeze.h). */
#include "freeze.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "caller.h"
#include "log.h"
#include "status-line.h"

/* One resource a freeze takes, and the reference it holds it by. */
typedef struct {
        LeaseKind kind;
        char *name;
        uint64_t ref;
} FreezeItem;

/* A freeze held: @po is compared, never followed (a postoffice retired
 * meanwhile is only ever compared). */
typedef struct {
        const Postoffice *po;
        pid_t pid;
        gint64 since_us; /* real time */
        GArray *items;   /* FreezeItem, all held */
} FreezeHold;

/* The last refusal in a postoffice, for po-freeze to say: what it waited
 * for and who held it then. */
typedef struct {
        const Postoffice *po;
        LeaseKind kind;
        char *name;
        int error;
        int waited_ms;
        pid_t holder;   /* 0: none here */
        char *program;  /* the holder's, or NULL */
        char *protocol; /* the holder's, or NULL */
        bool elsewhere; /* held through another daemon */
} FreezeFailure;

#define FREEZE_FAILURES_KEPT 64

struct Freezes {
        GMutex mutex;
        GPtrArray *holds;    /* FreezeHold*; guarded by mutex */
        GPtrArray *failures; /* FreezeFailure*; guarded by mutex */
};

/* A request the freezing thread waits for. */
typedef struct {
        GMutex mutex;
        GCond cond;
        bool done;   /* guarded by mutex */
        int result;  /* guarded by mutex */
} FreezeWait;

static void freeze_item_clear(gpointer data)
{
        g_free(((FreezeItem *)data)->name);
}

static GArray *freeze_items_new(void)
{
        GArray *items = g_array_new(FALSE, TRUE, sizeof(FreezeItem));
        g_array_set_clear_func(items, freeze_item_clear);
        return items;
}

static void freeze_hold_free(gpointer data)
{
        FreezeHold *hold = data;
        g_array_unref(hold->items);
        g_free(hold);
}

static void freeze_failure_free(gpointer data)
{
        FreezeFailure *failure = data;
        g_free(failure->name);
        g_free(failure->program);
        g_free(failure->protocol);
        g_free(failure);
}

Freezes *freezes_new(void)
{
        Freezes *freezes = g_new0(Freezes, 1);
        g_mutex_init(&freezes->mutex);
        freezes->holds = g_ptr_array_new_with_free_func(freeze_hold_free);
        freezes->failures = g_ptr_array_new_with_free_func(freeze_failure_free);
        return freezes;
}

void freezes_free(Freezes *freezes)
{
        if (!freezes)
                return;
        g_ptr_array_unref(freezes->holds);
        g_ptr_array_unref(freezes->failures);
        g_mutex_clear(&freezes->mutex);
        g_free(freezes);
}

/* Sessions, then KEY sections, then global files (LeaseKind's order),
 * each by name. */
static gint freeze_item_order(gconstpointer a, gconstpointer b)
{
        const FreezeItem *x = a, *y = b;
        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        return strcmp(x->name, y->name);
}

static void freeze_items_add(GArray *items, LeaseKind kind, const char *name)
{
        for (guint i = 0; i < items->len; i++) {
                FreezeItem *item = &g_array_index(items, FreezeItem, i);
                if (item->kind == kind && g_str_equal(item->name, name))
                        return;
        }
        FreezeItem item = {.kind = kind, .name = g_strdup(name)};
        g_array_append_val(items, item);
}

/* The mailbags of @po's KEY folder that have a KEY file. */
static void freeze_add_key_sections(Mailbags *mailbags, const char *po_path, GArray *items)
{
        g_autofree char *key_rel = po_profile_key_path(mailbags->profile, "X");
        char *slash = strrchr(key_rel, '/');
        if (!slash)
                return;
        *slash = '\0';
        g_autofree char *folder = po_path[0] ? g_build_filename(po_path, key_rel, NULL)
                                             : g_strdup(key_rel);
        DIR *dir = backing_fdopendir(
                backing_openat(mailbags->backing, folder, O_RDONLY | O_DIRECTORY, 0));
        if (!dir)
                return;
        for (struct dirent *entry; (entry = readdir(dir));) {
                if (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN)
                        continue;
                g_autofree char *inner = g_build_filename(key_rel, entry->d_name, NULL);
                PoClass cls;
                po_classify(mailbags->profile, inner, &cls);
                if (cls.role == PO_ROLE_MAILBAG_KEY)
                        freeze_items_add(items, LEASE_KEY_WRITE, cls.name);
        }
        closedir(dir);
}

/* What a freeze of @po takes, in the order it takes it. */
static GArray *freeze_items_of(Mailbags *mailbags, const char *po_path)
{
        GArray *items = freeze_items_new();
        for (const char *const *queue = po_profile_queues(mailbags->profile); *queue; queue++)
                freeze_items_add(items, LEASE_SESSION, *queue);
        freeze_add_key_sections(mailbags, po_path, items);
        for (const char *const *file = po_profile_exclusive_files(mailbags->profile); *file;
             file++) {
                PoClass cls;
                po_classify(mailbags->profile, *file, &cls);
                if (cls.role == PO_ROLE_EXCLUSIVE)
                        freeze_items_add(items, LEASE_EXCLUSIVE, cls.name);
        }
        g_array_sort(items, freeze_item_order);
        return items;
}

static void freeze_wait_done(void *opaque, int result)
{
        FreezeWait *wait = opaque;
        g_mutex_lock(&wait->mutex);
        wait->done = true;
        wait->result = result;
        g_cond_broadcast(&wait->cond);
        g_mutex_unlock(&wait->mutex);
}

/* Takes one item for @pid, waiting up to @timeout_ms: 0 or -errno. */
static int freeze_take_item(Postoffice *po, FreezeItem *item, pid_t pid, pid_t session,
                            const char *program, int timeout_ms)
{
        FreezeWait wait = {0};
        g_mutex_init(&wait.mutex);
        g_cond_init(&wait.cond);
        LeaseRequest request = {
                .kind = item->kind,
                .name = item->name,
                .pid = pid,
                .program = program,
                .protocol = "freeze",
                .ref = item->ref,
                .handle = false,
                .timeout_ms = MAX(timeout_ms, 1),
                .done = freeze_wait_done,
                .opaque = &wait,
                .admits_session = session,
        };
        int r = lease_acquire(po->leases, &request, NULL);
        if (r == LEASE_PENDING) {
                /* The lease's own timeout, the freezer's death or the
                 * postoffice's stop ends the wait: done always comes. */
                g_mutex_lock(&wait.mutex);
                while (!wait.done)
                        g_cond_wait(&wait.cond, &wait.mutex);
                r = wait.result;
                g_mutex_unlock(&wait.mutex);
        }
        g_cond_clear(&wait.cond);
        g_mutex_clear(&wait.mutex);
        return r;
}

static void freeze_release_items(Postoffice *po, GArray *items, guint n)
{
        for (guint i = 0; i < n; i++) {
                FreezeItem *item = &g_array_index(items, FreezeItem, i);
                lease_release(po->leases, item->kind, item->name, item->ref);
        }
}

/* What the freeze gave up on, and who held it then. */
static FreezeFailure *freeze_failure_new(Postoffice *po, const FreezeItem *item, int error,
                                        int waited_ms)
{
        g_autoptr(LeaseInfo) info = lease_manager_lookup(po->leases, item->kind, item->name);
        FreezeFailure *failure = g_new0(FreezeFailure, 1);
        failure->po = po;
        failure->kind = item->kind;
        failure->name = g_strdup(item->name);
        failure->error = error;
        failure->waited_ms = waited_ms;
        failure->holder = info->holder;
        failure->program = g_strdup(info->program);
        failure->protocol = g_strdup(info->protocol);
        failure->elsewhere = !info->holder &&
                             (info->held_elsewhere ||
                              cluster_held_elsewhere(po->cluster, item->kind, item->name));
        return failure;
}

static void freeze_forget_failure_locked(Freezes *freezes, const Postoffice *po)
{
        for (guint i = 0; i < freezes->failures->len; i++) {
                if (((FreezeFailure *)freezes->failures->pdata[i])->po == po) {
                        g_ptr_array_remove_index(freezes->failures, i);
                        return;
                }
        }
}

/* Keeps @failure (taken) as its postoffice's last refusal. */
static void freeze_note_failure(Freezes *freezes, FreezeFailure *failure)
{
        g_mutex_lock(&freezes->mutex);
        freeze_forget_failure_locked(freezes, failure->po);
        if (freezes->failures->len >= FREEZE_FAILURES_KEPT)
                g_ptr_array_remove_index(freezes->failures, 0);
        g_ptr_array_add(freezes->failures, failure);
        g_mutex_unlock(&freezes->mutex);
}

static FreezeHold *freeze_find_locked(Freezes *freezes, const Postoffice *po, pid_t pid,
                                      guint *index)
{
        for (guint i = 0; i < freezes->holds->len; i++) {
                FreezeHold *hold = freezes->holds->pdata[i];
                if (hold->po == po && hold->pid == pid) {
                        if (index)
                                *index = i;
                        return hold;
                }
        }
        return NULL;
}

/* A refusal that another try may not meet: a deadlock with a program
 * that takes the same resources in another order. */
#define FREEZE_RETRY_PAUSE_MS 50

int freeze_take(Mailbags *mailbags, Postoffice *po, const char *po_path, pid_t pid,
                int timeout_ms)
{
        Freezes *freezes = mailbags->freezes;
        g_mutex_lock(&freezes->mutex);
        bool already = freeze_find_locked(freezes, po, pid, NULL) != NULL;
        g_mutex_unlock(&freezes->mutex);
        if (already)
                return -EALREADY;
        pid_t session = caller_session_of(pid);
        char program[64];
        caller_program_name(pid, program, sizeof(program));
        gint64 start_us = g_get_monotonic_time();
        gint64 deadline_us = start_us + (gint64)timeout_ms * 1000;
        g_autoptr(GArray) items = freeze_items_of(mailbags, po_path);
        if (items->len == 0)
                return -EINVAL; /* a profile without queues */
        int r = 0;
        guint taken = 0;
        for (;;) {
                for (taken = 0; taken < items->len; taken++) {
                        FreezeItem *item = &g_array_index(items, FreezeItem, taken);
                        item->ref = mailbags_new_ref(mailbags);
                        gint64 left_ms = (deadline_us - g_get_monotonic_time()) / 1000;
                        r = left_ms > 0 ? freeze_take_item(po, item, pid, session, program,
                                                           (int)MIN(left_ms, G_MAXINT))
                                        : -EBUSY;
                        if (r < 0)
                                break;
                }
                if (r == 0)
                        break;
                freeze_release_items(po, items, taken);
                if (r == -EDEADLK && g_get_monotonic_time() +
                                             FREEZE_RETRY_PAUSE_MS * 1000 < deadline_us) {
                        g_usleep(FREEZE_RETRY_PAUSE_MS * 1000);
                        continue;
                }
                int waited_ms = (int)((g_get_monotonic_time() - start_us) / 1000);
                freeze_note_failure(freezes,
                                    freeze_failure_new(po, &g_array_index(items, FreezeItem, taken),
                                                       r, waited_ms));
                log_warning("freeze of postoffice %s for pid %d (%s) gave up after %d ms: %s",
                            po_path[0] ? po_path : ".", (int)pid, program, waited_ms,
                            g_strerror(-r));
                return r == -EDEADLK ? -EBUSY : r;
        }

        /* What is read of the hold once it is in the table is copied
         * first: the freezer's death may free it from another thread. */
        guint n_items = items->len;
        FreezeItem *head = &g_array_index(items, FreezeItem, 0);
        LeaseKind head_kind = head->kind;
        g_autofree char *head_name = g_strdup(head->name);
        uint64_t head_ref = head->ref;
        FreezeHold *hold = g_new0(FreezeHold, 1);
        hold->po = po;
        hold->pid = pid;
        hold->since_us = g_get_real_time();
        hold->items = g_steal_pointer(&items);
        g_mutex_lock(&freezes->mutex);
        freeze_forget_failure_locked(freezes, po);
        g_ptr_array_add(freezes->holds, hold);
        atomic_fetch_add(&po->frozen, 1);
        g_mutex_unlock(&freezes->mutex);
        /* A freezer that died before its record was in the table had its
         * holds reclaimed unseen: the record goes again. */
        if (!lease_holds(po->leases, head_kind, head_name, head_ref)) {
                freeze_hold_ended(mailbags, po, pid);
                return -ESRCH;
        }
        log_info("postoffice %s frozen for pid %d (%s): %u leases, taken in %d ms",
                 po_path[0] ? po_path : ".", (int)pid, program, n_items,
                 (int)((g_get_monotonic_time() - start_us) / 1000));
        return 0;
}

/* Takes @pid's freeze of @po out of the table: NULL when none. */
static FreezeHold *freeze_steal(Freezes *freezes, Postoffice *po, pid_t pid)
{
        guint index;
        g_mutex_lock(&freezes->mutex);
        FreezeHold *hold = freeze_find_locked(freezes, po, pid, &index);
        if (hold) {
                g_ptr_array_steal_index(freezes->holds, index);
                atomic_fetch_sub(&po->frozen, 1);
        }
        g_mutex_unlock(&freezes->mutex);
        return hold;
}

int freeze_release(Mailbags *mailbags, Postoffice *po, pid_t pid)
{
        FreezeHold *hold = freeze_steal(mailbags->freezes, po, pid);
        if (!hold)
                return -ENOENT;
        freeze_release_items(po, hold->items, hold->items->len);
        log_info("freeze of a postoffice by pid %d ended after %lld s", (int)pid,
                 (long long)((g_get_real_time() - hold->since_us) / G_USEC_PER_SEC));
        freeze_hold_free(hold);
        return 0;
}

void freeze_hold_ended(Mailbags *mailbags, Postoffice *po, pid_t pid)
{
        if (atomic_load(&po->frozen) == 0)
                return;
        FreezeHold *hold = freeze_steal(mailbags->freezes, po, pid);
        if (!hold)
                return;
        /* What the lease manager has not reclaimed yet goes too. */
        freeze_release_items(po, hold->items, hold->items->len);
        log_info("freeze of a postoffice by pid %d ended: its holder is gone", (int)pid);
        freeze_hold_free(hold);
}

/* The longest a freeze may wait to be taken: a day. */
#define FREEZE_WAIT_MAX_MS (86400u * 1000u)

int freeze_folder(Mailbags *mailbags, const char *relpath, pid_t tid, uint32_t timeout_ms)
{
        Postoffice *po = NULL;
        if (!mailbags->postoffices || postoffices_find(mailbags->postoffices, relpath, &po) < 0)
                return -EINVAL;
        pid_t pid = caller_process_of_thread(tid);
        if (timeout_ms == 0)
                return freeze_release(mailbags, po, pid);
        return freeze_take(mailbags, po, relpath, pid, (int)MIN(timeout_ms, FREEZE_WAIT_MAX_MS));
}

/* "pid=N program=P protocol=P" of @pid, or 0 and "?" for a caller who
 * may not see it (as in the lease lines). */
static void freeze_add_process(PoStatusLine *line, pid_t pid, const char *program,
                               const char *protocol, FreezeSeesFn sees, const void *data)
{
        bool visible = sees(pid, data);
        po_status_line_add_field_printf(line, "pid", "%d", visible ? (int)pid : 0);
        if (program)
                po_status_line_add_field(line, "program", visible ? program : "?");
        if (protocol)
                po_status_line_add_field(line, "protocol", protocol);
}

char *freeze_describe(Mailbags *mailbags, Postoffice *po, const char *po_path,
                      FreezeSeesFn sees, const void *data)
{
        Freezes *freezes = mailbags->freezes;
        g_autoptr(GString) out = g_string_new(NULL);
        g_mutex_lock(&freezes->mutex);
        for (guint i = 0; i < freezes->holds->len; i++) {
                FreezeHold *hold = freezes->holds->pdata[i];
                if (hold->po != po)
                        continue;
                g_autoptr(PoStatusLine) line = po_status_line_new();
                po_status_line_add_word(line, "frozen");
                freeze_add_process(line, hold->pid, NULL, NULL, sees, data);
                po_status_line_add_time(line, "since", hold->since_us);
                po_status_line_add_field_printf(line, "leases", "%u", hold->items->len);
                po_status_line_append_to(line, out);
        }
        for (guint i = 0; i < freezes->failures->len; i++) {
                const FreezeFailure *failure = freezes->failures->pdata[i];
                if (failure->po != po)
                        continue;
                g_autoptr(PoStatusLine) line = po_status_line_new();
                po_status_line_add_word(line, "refused");
                po_status_line_add_word(line, lease_kind_to_string(failure->kind));
                po_status_line_add_word(line, failure->name);
                po_status_line_add_field(line, PO_STATUS_FIELD_POSTOFFICE,
                                         po_path[0] ? po_path : ".");
                po_status_line_add_field(line, "error", g_strerror(-failure->error));
                po_status_line_add_field_printf(line, "waited_ms", "%d", failure->waited_ms);
                if (failure->holder)
                        freeze_add_process(line, failure->holder,
                                           failure->program ? failure->program : "?",
                                           failure->protocol ? failure->protocol : "?", sees,
                                           data);
                else if (failure->elsewhere)
                        po_status_line_add_field(line, PO_STATUS_FIELD_HOLDER, "other-daemon");
                po_status_line_append_to(line, out);
        }
        g_mutex_unlock(&freezes->mutex);
        return g_string_free(g_steal_pointer(&out), FALSE);
}
