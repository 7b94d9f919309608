/* po-sim-json.h - reading the one-line JSON that po-sim --json (and
 * soak.sh --json) prints, for the tests that run them. */
#pragma once

#include <criterion/criterion.h>
#include <glib.h>
#include <string.h>

/* The number after "\"@key\": " in @json; fails the test when absent. */
static inline double po_sim_json_number(const char *json, const char *key)
{
        g_autofree char *needle = g_strdup_printf("\"%s\": ", key);
        const char *at = strstr(json, needle);
        cr_assert_not_null(at, "no %s in %s", key, json);
        char *end = NULL;
        double value = g_ascii_strtod(at + strlen(needle), &end);
        cr_assert(end != at + strlen(needle), "%s is not a number in %s", key, json);
        return value;
}

static inline unsigned po_sim_json_count(const char *json, const char *key)
{
        return (unsigned)po_sim_json_number(json, key);
}

/* The queue's mail is accounted for: each of the @offered messages was
 * queued or refused with [008], each queued one was delivered, duplicated,
 * lost or returned, and the queue is empty at the end. */
static inline void po_sim_expect_queue_accounted(const char *json, unsigned offered)
{
        unsigned queued = po_sim_json_count(json, "queued");
        cr_expect_eq(queued + po_sim_json_count(json, "refused"), offered, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "delivered") + po_sim_json_count(json, "duplicates") +
                             po_sim_json_count(json, "lost") + po_sim_json_count(json, "returned"),
                     queued, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "still_queued"), 0, "%s", json);
}

/* A run through mailbagfs in which each of the @queued messages was
 * delivered once: none duplicated or lost, no [021] (missing routing
 * file), no [008] (mailbag contention). */
static inline void po_sim_expect_clean(const char *json, unsigned queued)
{
        cr_expect(strstr(json, "\"mode\": \"mailbagfs\""), "%s", json);
        cr_expect_eq(po_sim_json_count(json, "delivered"), queued, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "duplicates"), 0, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "lost"), 0, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "missing_routing"), 0, "%s", json);
        cr_expect_eq(po_sim_json_count(json, "contention_failures"), 0, "%s", json);
}
