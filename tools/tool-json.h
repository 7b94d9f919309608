/* tool-json.h - the JSON the tools print, built with json-glib.
 *
 * Status values and file names may hold any bytes, JSON strings only
 * UTF-8: a valid UTF-8 string passes as it is, any other is read as
 * Latin-1 (the code page of most postoffice names), so every byte still
 * shows and the output always parses.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Adds @text as a string value, converted as said above. */
void tool_json_add_string(JsonBuilder *builder, const char *text);

/* Adds a status field's value: a number when it is all decimal digits
 * and fits in 63 bits, else a string. */
void tool_json_add_value(JsonBuilder *builder, const char *value);

/* Writes the builder's root to stdout on one line, ended by '\n'. */
void tool_json_print(JsonBuilder *builder);

G_END_DECLS
