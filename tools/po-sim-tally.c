/* po-sim-tally.c - what happened to the mail, counted from the files.
 *
 * The tracked messages are those queued in INQUEUE3 when the run starts
 * plus those the producers queued, and those the deliverers delivered
 * straight (counted apart: never queued). After the run every user mailbag is
 * read and each tracked message's live records are counted, less the
 * copies that were there before the run: one copy is a delivery, more are
 * duplicates, none while no longer queued is a lost message (unless a
 * consumer returned it to the sender with [008]). Nothing here trusts what
 * a worker says it delivered.
 *
 * When consumers die (killed, or cut off by a dead mount), the parent
 * knows which messages they had in hand (SimShared.in_hand): a duplicate
 * of such a message, with no more extra copies than deaths, is explained
 * (Q136379's order: delivery comes before the queue record goes); any other
 * duplicate is a collision. A message whose producer died while queueing
 * it is tracked only if it reached the queue (it was delivered or is still
 * queued); otherwise it is counted as interrupted, not lost.
 */
#include "po-sim.h"

#include "mailbag.h"

#include <string.h>

static int tally_compare_names(gconstpointer a, gconstpointer b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *sim_list_recipients(const char *root, GError **error)
{
        g_autofree char *folder = g_build_filename(root, PO_FOLDER_MBG, NULL);
        g_autoptr(GDir) dir = g_dir_open(folder, 0, error);
        if (!dir)
                return NULL;
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        for (const char *entry; (entry = g_dir_read_name(dir)) != NULL;) {
                uint32_t number;
                /* User mailbags are named by their hex number (Q77926);
                 * mailbag 0 is the administrator's, left out of the mail. */
                if (strlen(entry) == 12 && entry[8] == '.' && g_ascii_strcasecmp(entry + 9, PO_FOLDER_MBG) == 0 &&
                    po_naming_parse_number(entry, 8, &number) && number != 0)
                        g_ptr_array_add(names, g_ascii_strup(entry, 8));
        }
        g_ptr_array_sort(names, tally_compare_names);
        return g_steal_pointer(&names);
}

/* Calls @fn for every live record of @mailbag that names a message. */
static bool tally_each_record(const SimContext *ctx, const char *mailbag,
                              void (*fn)(uint32_t number, void *data), void *data,
                              unsigned *live, GError **error)
{
        g_autoptr(PoMailbag) bag = po_mailbag_load(ctx->root, mailbag, error);
        if (!bag)
                return false;
        PoMailbagStats stats;
        po_mailbag_stats(bag, &stats);
        if (live)
                *live = stats.live;
        for (int slot = po_mailbag_next_live(bag, -1); slot >= 0;
             slot = po_mailbag_next_live(bag, slot)) {
                PoRecord fields;
                po_record_decode(po_mailbag_record(bag, slot), &fields);
                if (fields.has_message_number)
                        fn(fields.message_number, data);
        }
        return true;
}

static void tally_add_initial(uint32_t number, void *data)
{
        g_array_append_val((GArray *)data, number);
}

/* Counts a copy of @number when it is tracked (present in the table). */
static void tally_count_copy(uint32_t number, void *data)
{
        GHashTable *copies = data;
        gpointer key = GUINT_TO_POINTER(number), value;
        if (g_hash_table_lookup_extended(copies, key, NULL, &value))
                g_hash_table_insert(copies, key, GUINT_TO_POINTER(GPOINTER_TO_UINT(value) + 1));
}

static bool tally_count_in_recipients(const SimContext *ctx, GHashTable *copies,
                                      unsigned *full, GError **error)
{
        for (guint i = 0; i < ctx->recipients->len; i++) {
                unsigned live = 0;
                if (!tally_each_record(ctx, g_ptr_array_index(ctx->recipients, i),
                                       tally_count_copy, copies, &live, error))
                        return false;
                if (full && live >= PO_MAILBAG_MAX_RECORDS)
                        (*full)++;
        }
        return true;
}

bool sim_tally_before(const SimContext *ctx, SimBefore *before, GError **error)
{
        before->initial = g_array_new(FALSE, FALSE, sizeof(uint32_t));
        before->baseline = g_hash_table_new(g_direct_hash, g_direct_equal);
        if (!tally_each_record(ctx, SIM_QUEUE, tally_add_initial, before->initial, NULL, error))
                return false;
        for (guint i = 0; i < before->initial->len; i++)
                g_hash_table_insert(before->baseline,
                                    GUINT_TO_POINTER(g_array_index(before->initial, uint32_t, i)),
                                    GUINT_TO_POINTER(0));
        return tally_count_in_recipients(ctx, before->baseline, NULL, error);
}

void sim_before_clear(SimBefore *before)
{
        g_clear_pointer(&before->initial, g_array_unref);
        g_clear_pointer(&before->baseline, g_hash_table_unref);
}

/* A deliverer's message: one copy is a delivery; none is a return when the
 * deliverer reported [008], an interruption when it died delivering, and
 * lost otherwise. */
static void tally_direct(SimTally *tally, unsigned outcome, unsigned count)
{
        if (count == 0 && outcome == SIM_OUTCOME_DIRECT_PENDING) {
                tally->interrupted++;
                return;
        }
        tally->direct++;
        if (count == 1)
                tally->direct_delivered++;
        else if (count > 1)
                tally->direct_duplicates++;
        else if (outcome == SIM_OUTCOME_DIRECT_RETURNED)
                tally->direct_returned++;
        else
                tally->direct_lost++;
}

bool sim_tally_after(const SimContext *ctx, const SimBefore *before,
                     GHashTable *in_hand_at_death, SimTally *tally, GError **error)
{
        memset(tally, 0, sizeof *tally);
        const SimShared *shared = ctx->shared;
        g_autoptr(GHashTable) copies = g_hash_table_new(g_direct_hash, g_direct_equal);
        for (guint i = 0; i < before->initial->len; i++)
                g_hash_table_insert(copies,
                                    GUINT_TO_POINTER(g_array_index(before->initial, uint32_t, i)),
                                    GUINT_TO_POINTER(0));
        g_autoptr(GHashTable) appending = g_hash_table_new(g_direct_hash, g_direct_equal);
        /* number -> SIM_OUTCOME_DIRECT*: the deliverers' messages */
        g_autoptr(GHashTable) direct = g_hash_table_new(g_direct_hash, g_direct_equal);
        for (uint32_t i = 0; i < shared->capacity; i++) {
                uint8_t outcome = atomic_load(&shared->outcome[i]);
                gpointer number = GUINT_TO_POINTER(shared->first_number + i);
                if (outcome == SIM_OUTCOME_QUEUED || outcome == SIM_OUTCOME_APPENDING)
                        g_hash_table_insert(copies, number, GUINT_TO_POINTER(0));
                if (outcome == SIM_OUTCOME_APPENDING)
                        g_hash_table_add(appending, number);
                if (outcome == SIM_OUTCOME_DIRECT || outcome == SIM_OUTCOME_DIRECT_PENDING ||
                    outcome == SIM_OUTCOME_DIRECT_RETURNED) {
                        g_hash_table_insert(copies, number, GUINT_TO_POINTER(0));
                        g_hash_table_insert(direct, number, GUINT_TO_POINTER(outcome));
                }
        }

        /* Tracked messages still in the queue: the run failed to drain it. */
        unsigned queue_live = 0;
        g_autoptr(GHashTable) queue_copies = g_hash_table_new(g_direct_hash, g_direct_equal);
        GHashTableIter iter;
        gpointer key;
        g_hash_table_iter_init(&iter, copies);
        while (g_hash_table_iter_next(&iter, &key, NULL))
                g_hash_table_insert(queue_copies, key, GUINT_TO_POINTER(0));
        if (!tally_each_record(ctx, SIM_QUEUE, tally_count_copy, queue_copies, &queue_live, error))
                return false;
        if (queue_live >= PO_MAILBAG_MAX_RECORDS)
                tally->full_mailbags++;
        if (!tally_count_in_recipients(ctx, copies, &tally->full_mailbags, error))
                return false;

        g_autoptr(GHashTable) returned = g_hash_table_new(g_direct_hash, g_direct_equal);
        unsigned n_returned = MIN(atomic_load(&shared->returned_count), SIM_RETURNED_MAX);
        for (unsigned i = 0; i < n_returned; i++)
                g_hash_table_add(returned, GUINT_TO_POINTER(shared->returned[i]));

        gpointer value;
        g_hash_table_iter_init(&iter, copies);
        while (g_hash_table_iter_next(&iter, &key, &value)) {
                unsigned count = GPOINTER_TO_UINT(value);
                unsigned before_run = GPOINTER_TO_UINT(g_hash_table_lookup(before->baseline, key));
                count = count > before_run ? count - before_run : 0;
                gpointer direct_outcome;
                if (g_hash_table_lookup_extended(direct, key, NULL, &direct_outcome)) {
                        tally_direct(tally, GPOINTER_TO_UINT(direct_outcome), count);
                        continue;
                }
                bool queued_now = GPOINTER_TO_UINT(g_hash_table_lookup(queue_copies, key)) > 0;
                if (count == 0 && !queued_now && g_hash_table_contains(appending, key)) {
                        tally->interrupted++;
                        continue;
                }
                tally->queued++;
                if (count == 1) {
                        tally->delivered++;
                } else if (count > 1) {
                        unsigned deaths = in_hand_at_death ? GPOINTER_TO_UINT(
                                g_hash_table_lookup(in_hand_at_death, key)) : 0;
                        tally->duplicates++;
                        tally->duplicate_copies += count - 1;
                        if (count - 1 <= deaths)
                                tally->duplicates_explained++;
                        else
                                tally->duplicates_unexplained++;
                } else if (queued_now) {
                        tally->still_queued++;
                } else if (g_hash_table_contains(returned, key)) {
                        tally->returned++;
                } else {
                        tally->lost++;
                }
        }

        unsigned n_missing = atomic_load(&shared->missing_count);
        tally->missing_other = n_missing > SIM_MISSING_MAX ? n_missing - SIM_MISSING_MAX : 0;
        for (unsigned i = 0; i < MIN(n_missing, SIM_MISSING_MAX); i++)
                if (!in_hand_at_death || !g_hash_table_contains(
                            in_hand_at_death, GUINT_TO_POINTER(shared->missing[i])))
                        tally->missing_other++;
        return true;
}
