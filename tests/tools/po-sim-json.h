/* po-sim-json.h - reading the one-line JSON that po-sim --json (and
 * soak.sh --json) prints, for the tests of tests/tools/. */
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
