/* lease-info.c - what the lease manager shows: snapshots of held and
 * awaited resources, one resource, and the counters. Read under the
 * manager's mutex, returned as copies the caller owns. */
#include "lease-private.h"

#include <string.h>

void lease_info_free(LeaseInfo *info)
{
        if (!info)
                return;
        g_free(info->name);
        g_free(info->program);
        g_free(info->protocol);
        g_free(info->waiter_pids);
        g_free(info);
}

static LeaseInfo *lease_info_new(LeaseKind kind, const char *name, const LeaseResource *r)
{
        LeaseInfo *info = g_new0(LeaseInfo, 1);
        guint i = 0;

        info->kind = kind;
        info->name = g_strdup(name);
        if (!r)
                return info;
        if (r->holder) {
                info->holder = r->holder->pid;
                info->program = g_strdup(r->program);
                info->protocol = g_strdup(r->protocol);
                info->since_us = r->since_us;
                info->refs = r->refs->len;
        }
        info->n_waiters = r->waiters.length;
        info->held_elsewhere = r->remote_busy;
        if (info->n_waiters > 0) {
                info->waiter_pids = g_new(pid_t, info->n_waiters);
                for (GList *l = r->waiters.head; l; l = l->next)
                        info->waiter_pids[i++] = ((LeaseWaiter *)l->data)->process->pid;
        }
        return info;
}

static gint lease_info_compare(gconstpointer a, gconstpointer b)
{
        const LeaseInfo *x = *(LeaseInfo *const *)a;
        const LeaseInfo *y = *(LeaseInfo *const *)b;

        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        return strcmp(x->name, y->name);
}

GPtrArray *lease_manager_snapshot(LeaseManager *m)
{
        GPtrArray *infos = g_ptr_array_new_with_free_func((GDestroyNotify)lease_info_free);
        GHashTableIter iter;
        gpointer value;

        g_mutex_lock(&m->mutex);
        g_hash_table_iter_init(&iter, m->resources);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LeaseResource *r = value;

                g_ptr_array_add(infos, lease_info_new(r->kind, r->name, r));
        }
        g_mutex_unlock(&m->mutex);
        g_ptr_array_sort(infos, lease_info_compare);
        return infos;
}

LeaseInfo *lease_manager_lookup(LeaseManager *m, LeaseKind kind, const char *name)
{
        g_autofree char *key = lease_key(kind, name);
        LeaseInfo *info;

        g_mutex_lock(&m->mutex);
        info = lease_info_new(kind, name, g_hash_table_lookup(m->resources, key));
        g_mutex_unlock(&m->mutex);
        return info;
}

void lease_manager_get_stats(LeaseManager *m, LeaseStats *out)
{
        g_mutex_lock(&m->mutex);
        *out = m->stats;
        g_mutex_unlock(&m->mutex);
}

void lease_overlap_count_free(LeaseOverlapCount *count)
{
        if (!count)
                return;
        g_free(count->name);
        g_free(count->protocol);
        g_free(count->other_protocol);
        g_free(count);
}

static gint lease_overlap_order(gconstpointer a, gconstpointer b)
{
        const LeaseOverlapCount *x = *(LeaseOverlapCount *const *)a;
        const LeaseOverlapCount *y = *(LeaseOverlapCount *const *)b;
        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        int c = strcmp(x->name, y->name);
        if (c == 0)
                c = strcmp(x->protocol, y->protocol);
        return c ? c : strcmp(x->other_protocol, y->other_protocol);
}

GPtrArray *lease_manager_overlaps(LeaseManager *m)
{
        GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)lease_overlap_count_free);
        g_mutex_lock(&m->mutex);
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, m->overlaps);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                const LeaseOverlapCount *one = value;
                LeaseOverlapCount *copy = g_new0(LeaseOverlapCount, 1);
                *copy = *one;
                copy->name = g_strdup(one->name);
                copy->protocol = g_strdup(one->protocol);
                copy->other_protocol = g_strdup(one->other_protocol);
                g_ptr_array_add(out, copy);
        }
        g_mutex_unlock(&m->mutex);
        g_ptr_array_sort(out, lease_overlap_order);
        return out;
}

void lease_manager_count_mixed_protocol(LeaseManager *m)
{
        g_mutex_lock(&m->mutex);
        m->stats.mixed_protocol++;
        g_mutex_unlock(&m->mutex);
}

void lease_wait_times_add(LeaseWaitTimes *times, gint64 waited_ms)
{
        static const gint64 bounds[] = LEASE_WAIT_BUCKET_BOUNDS_MS;
        guint bucket = 0;

        waited_ms = MAX(waited_ms, 0);
        while (bucket < G_N_ELEMENTS(bounds) && waited_ms > bounds[bucket])
                bucket++;
        times->count[bucket]++;
        times->sum_ms += (guint64)waited_ms;
}
