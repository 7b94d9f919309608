/* tool-json.c - strings, numbers and output of the tools' JSON. */
#include "tool-json.h"

#include <stdbool.h>
#include <stdio.h>

void tool_json_add_string(JsonBuilder *builder, const char *text)
{
        if (text == NULL)
                text = "";
        if (g_utf8_validate(text, -1, NULL)) {
                json_builder_add_string_value(builder, text);
                return;
        }
        /* Every byte is a Latin-1 character, so this conversion cannot fail. */
        g_autofree char *utf8 = g_convert(text, -1, "UTF-8", "ISO-8859-1", NULL, NULL, NULL);
        json_builder_add_string_value(builder, utf8 ? utf8 : "");
}

void tool_json_add_value(JsonBuilder *builder, const char *value)
{
        guint64 number;
        bool digits = value && g_ascii_isdigit(value[0]);
        for (const char *p = value; digits && *p; p++)
                digits = g_ascii_isdigit(*p);
        if (digits && g_ascii_string_to_unsigned(value, 10, 0, G_MAXINT64, &number, NULL))
                json_builder_add_int_value(builder, (gint64)number);
        else
                tool_json_add_string(builder, value);
}

void tool_json_print(JsonBuilder *builder)
{
        g_autoptr(JsonNode) root = json_builder_get_root(builder);
        g_autoptr(JsonGenerator) generator = json_generator_new();
        json_generator_set_root(generator, root);
        gsize len = 0;
        g_autofree char *text = json_generator_to_data(generator, &len);
        fwrite(text, 1, len, stdout);
        fputc('\n', stdout);
}
