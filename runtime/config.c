/* config.c - config.pb: decoding with strict checks, --set overrides, validation rules and the
 * printed forms. Generic over the schema: overrides and printing walk the protobuf-c field
 * descriptors, so a field added to proto/config.proto is settable and printed without code
 * here; only the rules between fields are written out by hand (px_config_validate). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aggregators/aggregator.h"

/* ---- generic access to fields --------------------------------------------------------------- */

#define PX__AT(msg, off)  ((void *)((char *)(msg) + (off)))
#define PX__CAT(msg, off) ((const void *)((const char *)(msg) + (off)))

static int px__is_message(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_MESSAGE;
}

/* Fills every absent singular sub-message with its defaults, recursively. */
static px_status px__materialize(ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!px__is_message(f) || f->label == PROTOBUF_C_LABEL_REPEATED) continue;
        ProtobufCMessage **slot = PX__AT(msg, f->offset);
        if (!*slot) {
            const ProtobufCMessageDescriptor *sd = f->descriptor;
            *slot = malloc(sd->sizeof_message);
            if (!*slot) return px_error(PX_ENOMEM, "config: cannot allocate section %s", f->name);
            sd->message_init(*slot);
        }
        PX_CHECK(px__materialize(*slot));
    }
    return PX_OK;
}

/* Refuses unknown fields and out-of-list enum values anywhere in the message. */
static px_status px__check_known(const ProtobufCMessage *msg, const char *path)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    if (msg->n_unknown_fields)
        return px_error(PX_EINVAL, "%s%sfield number %u is not part of the phalanx.Config schema",
                        path, path[0] ? ": " : "", msg->unknown_fields[0].tag);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", f->name);
        if (px__is_message(f) && f->label != PROTOBUF_C_LABEL_REPEATED) {
            const ProtobufCMessage *const *slot = PX__CAT(msg, f->offset);
            if (*slot) PX_CHECK(px__check_known(*slot, sub));
        } else if (f->type == PROTOBUF_C_TYPE_ENUM) {
            const int *vals;
            size_t n = 1;
            if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                n = *(const size_t *)PX__CAT(msg, f->quantifier_offset);
                vals = *(int *const *)PX__CAT(msg, f->offset);
            } else {
                vals = PX__CAT(msg, f->offset);
            }
            for (size_t k = 0; k < n; k++)
                if (!protobuf_c_enum_descriptor_get_value(f->descriptor, vals[k]))
                    return px_error(PX_EINVAL, "%s = %d is not one of the values of %s", sub,
                                    vals[k],
                                    ((const ProtobufCEnumDescriptor *)f->descriptor)->name);
        }
    }
    return PX_OK;
}

px_status px_config_decode(const unsigned char *data, size_t len, const char *what, px_config **out)
{
    *out = NULL;
    if (len == 0)
        return px_error(PX_EINVAL,
                        "%s: the file is empty; a config is a binary phalanx.Config "
                        "(encode a text config with: protoc --encode=phalanx.Config "
                        "-I proto proto/config.proto < my.txtpb > my.pb)",
                        what);
    ProtobufCMessage *m = protobuf_c_message_unpack(&phalanx__config__descriptor, NULL, len, data);
    if (!m) {
        size_t printable = 0;
        for (size_t i = 0; i < len; i++)
            printable += isprint(data[i]) || data[i] == '\n' || data[i] == '\t' || data[i] == '\r';
        if (printable == len)
            return px_error(PX_EINVAL,
                            "%s: not a binary config.pb; it looks like text. Encode a "
                            "text-format config first: protoc --encode=phalanx.Config "
                            "-I proto proto/config.proto < %s > config.pb",
                            what, what);
        return px_error(PX_EINVAL,
                        "%s: not a valid config.pb (%zu bytes that do not decode as "
                        "phalanx.Config: truncated, corrupted or another format)",
                        what, len);
    }
    px_status st = px__check_known(m, "");
    if (st == PX_OK) st = px__materialize(m);
    if (st < 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return px_error_context(st, "%s", what);
    }
    *out = (px_config *)m;
    return PX_OK;
}

px_status px_config_load(const char *path, px_config **out)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return px_error(PX_EINVAL, "%s: is a directory or device, not a config file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return px_error(PX_EINVAL, "%s: cannot open config: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return px_error(PX_ENOMEM, "%s: cannot allocate", path);
    }
    for (;;) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len < cap) break;
        if (cap >= (64u << 20)) {
            free(buf);
            fclose(f);
            return px_error(PX_EINVAL, "%s: larger than 64 MB: not a config", path);
        }
        unsigned char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            fclose(f);
            return px_error(PX_ENOMEM, "%s: cannot allocate", path);
        }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return px_error(PX_EINVAL, "%s: read error", path);
    }
    px_status st = px_config_decode(buf, len, path, out);
    free(buf);
    return st;
}

px_status px_config_default(px_config **out)
{
    *out = malloc(sizeof **out);
    if (!*out) return px_error(PX_ENOMEM, "config: cannot allocate");
    phalanx__config__init(*out);
    px_status st = px__materialize(&(*out)->base);
    if (st < 0) {
        px_config_free(*out);
        *out = NULL;
    }
    return st;
}

void px_config_free(px_config *cfg)
{
    if (cfg) protobuf_c_message_free_unpacked(&cfg->base, NULL);
}

/* ---- --set ---------------------------------------------------------------------------------- */

static void px__field_names(const ProtobufCMessageDescriptor *d, char *buf, size_t cap)
{
    buf[0] = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (i) strncat(buf, ", ", cap - strlen(buf) - 1);
        strncat(buf, d->fields[i].name, cap - strlen(buf) - 1);
    }
}

static void px__enum_names(const ProtobufCEnumDescriptor *e, char *buf, size_t cap)
{
    buf[0] = 0;
    for (unsigned i = 0; i < e->n_values; i++) {
        if (i) strncat(buf, ", ", cap - strlen(buf) - 1);
        strncat(buf, e->values[i].name, cap - strlen(buf) - 1);
    }
}

static px_status px__parse_int(const char *path, const char *s, long long lo, unsigned long long hi,
                               int is_unsigned, void *out, size_t size)
{
    char *end;
    errno = 0;
    while (isspace((unsigned char)*s))
        s++;
    if (is_unsigned) {
        if (*s == '-' || !*s)
            return px_error(PX_EINVAL, "%s: expected a non-negative integer, got '%s'", path, s);
        unsigned long long v = strtoull(s, &end, 0);
        if (errno || *end || v > hi)
            return px_error(PX_EINVAL, "%s: expected an integer in [0, %llu], got '%s'", path, hi,
                            s);
        if (size == 4)
            *(uint32_t *)out = (uint32_t)v;
        else
            *(uint64_t *)out = v;
    } else {
        long long v = strtoll(s, &end, 0);
        if (errno || *end || !*s || v < lo || (v > 0 && (unsigned long long)v > hi))
            return px_error(PX_EINVAL, "%s: expected an integer in [%lld, %llu], got '%s'", path,
                            lo, hi, s);
        if (size == 4)
            *(int32_t *)out = (int32_t)v;
        else
            *(int64_t *)out = v;
    }
    return PX_OK;
}

/* Parses one scalar value of field f into `out` (sized for the field's C type). */
static px_status px__parse_scalar(const ProtobufCFieldDescriptor *f, const char *path,
                                  const char *s, void *out)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return px__parse_int(path, s, INT32_MIN, INT32_MAX, 0, out, 4);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return px__parse_int(path, s, 0, UINT32_MAX, 1, out, 4);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return px__parse_int(path, s, INT64_MIN, INT64_MAX, 0, out, 8);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return px__parse_int(path, s, 0, UINT64_MAX, 1, out, 8);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (!*s || *end || errno == ERANGE || !isfinite(v) ||
            (f->type == PROTOBUF_C_TYPE_FLOAT && fabs(v) > FLT_MAX))
            return px_error(PX_EINVAL, "%s: expected a finite number, got '%s'", path, s);
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)out = (float)v;
        else
            *(double *)out = v;
        return PX_OK;
    }
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean b;
        if (!strcasecmp(s, "true") || !strcmp(s, "1"))
            b = 1;
        else if (!strcasecmp(s, "false") || !strcmp(s, "0"))
            b = 0;
        else
            return px_error(PX_EINVAL, "%s: expected true or false, got '%s'", path, s);
        *(protobuf_c_boolean *)out = b;
        return PX_OK;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        for (unsigned i = 0; i < e->n_values; i++) {
            if (!strcasecmp(e->values[i].name, s)) {
                *(int *)out = e->values[i].value;
                return PX_OK;
            }
        }
        char names[512];
        px__enum_names(e, names, sizeof names);
        return px_error(PX_EINVAL, "%s: '%s' is not one of %s", path, s, names);
    }
    case PROTOBUF_C_TYPE_STRING: {
        char *copy = strdup(s);
        if (!copy) return px_error(PX_ENOMEM, "%s: cannot allocate", path);
        *(char **)out = copy;
        return PX_OK;
    }
    default:
        return px_error(PX_EINVAL, "%s: this field cannot be set from the command line", path);
    }
}

static size_t px__scalar_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static px_status px__set_field(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                               const char *path, const char *value)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (f->type == PROTOBUF_C_TYPE_STRING || px__is_message(f))
            return px_error(PX_EINVAL, "%s: repeated field of this type cannot be set here", path);
        size_t esz = px__scalar_size(f), count = 0;
        const char *p = value;
        if (*value)
            for (count = 1; *p; p++)
                count += (*p == ',');
        void *arr = count ? calloc(count, esz) : NULL;
        if (count && !arr) return px_error(PX_ENOMEM, "%s: cannot allocate", path);
        char item[128];
        p = value;
        for (size_t k = 0; k < count; k++) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (len >= sizeof item) len = sizeof item - 1;
            memcpy(item, p, len);
            item[len] = 0;
            char elem_path[300];
            snprintf(elem_path, sizeof elem_path, "%s[%zu]", path, k);
            px_status st = px__parse_scalar(f, elem_path, item, (char *)arr + k * esz);
            if (st < 0) {
                free(arr);
                return st;
            }
            p = comma ? comma + 1 : p + len;
        }
        void **slot = PX__AT(msg, f->offset);
        free(*slot);
        *slot = arr;
        *(size_t *)PX__AT(msg, f->quantifier_offset) = count;
        return PX_OK;
    }
    if (px__is_message(f))
        return px_error(PX_EINVAL, "%s is a section; set one of its fields (%s.FIELD=VALUE)", path,
                        path);
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        char *copy;
        PX_CHECK(px__parse_scalar(f, path, value, &copy));
        char **slot = PX__AT(msg, f->offset);
        if (*slot && *slot != (char *)f->default_value) free(*slot);
        *slot = copy;
        return PX_OK;
    }
    unsigned char tmp[8];
    PX_CHECK(px__parse_scalar(f, path, value, tmp));
    memcpy(PX__AT(msg, f->offset), tmp, px__scalar_size(f));
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
        *(protobuf_c_boolean *)PX__AT(msg, f->quantifier_offset) = 1;
    return PX_OK;
}

/* Resolves "a.b.c" to the message holding field c and c's descriptor. */
static px_status px__resolve(ProtobufCMessage *root, const char *path, ProtobufCMessage **holder,
                             const ProtobufCFieldDescriptor **field)
{
    ProtobufCMessage *msg = root;
    const char *seg = path;
    char name[128], walked[256] = "";
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        if (len == 0 || len >= sizeof name)
            return px_error(PX_EINVAL, "'%s' is not a field path (expected section.field)", path);
        memcpy(name, seg, len);
        name[len] = 0;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
        if (!f) {
            char names[1024];
            px__field_names(msg->descriptor, names, sizeof names);
            if (walked[0])
                return px_error(PX_EINVAL, "%s has no field '%s' (its fields: %s)", walked, name,
                                names);
            return px_error(PX_EINVAL, "the config has no section '%s' (sections: %s)", name,
                            names);
        }
        if (walked[0]) strncat(walked, ".", sizeof walked - strlen(walked) - 1);
        strncat(walked, name, sizeof walked - strlen(walked) - 1);
        if (!dot) {
            *holder = msg;
            *field = f;
            return PX_OK;
        }
        if (!px__is_message(f) || f->label == PROTOBUF_C_LABEL_REPEATED)
            return px_error(PX_EINVAL, "%s is not a section, so '%s' cannot go deeper", walked,
                            path);
        msg = *(ProtobufCMessage **)PX__AT(msg, f->offset);
        seg = dot + 1;
    }
}

px_status px_config_set(px_config *cfg, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    if (!eq) return px_error(PX_EINVAL, "--set %s: expected section.field=value", assignment);
    char path[256];
    size_t len = (size_t)(eq - assignment);
    if (len >= sizeof path) return px_error(PX_EINVAL, "--set: field path too long");
    memcpy(path, assignment, len);
    path[len] = 0;
    ProtobufCMessage *holder;
    const ProtobufCFieldDescriptor *f;
    px_status st = px__resolve(&cfg->base, path, &holder, &f);
    if (st == PX_OK) st = px__set_field(holder, f, path, eq + 1);
    if (st < 0) return px_error_context(st, "--set %s", assignment);
    return PX_OK;
}

/* ---- printing ------------------------------------------------------------------------------- */

static void px__scalar_text(const ProtobufCFieldDescriptor *f, const void *p, char *buf, size_t cap,
                            int quote_strings)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf(buf, cap, "%d", *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(buf, cap, "%u", *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf, cap, "%lld", (long long)*(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT: {
        /* the shortest text that reads back to the same float (0.05, not 0.0500000007) */
        float v = *(const float *)p;
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(buf, cap, "%.*g", prec, (double)v);
            if (strtof(buf, NULL) == v) break;
        }
        break;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v = *(const double *)p;
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, cap, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        snprintf(buf, cap, "%s", *(const protobuf_c_boolean *)p ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        if (v)
            snprintf(buf, cap, "%s", v->name);
        else
            snprintf(buf, cap, "%d", *(const int *)p);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        if (!s) s = "";
        if (!quote_strings) {
            snprintf(buf, cap, "%s", s);
            break;
        }
        size_t o = 0;
        if (o + 1 < cap) buf[o++] = '"';
        for (; *s && o + 5 < cap; s++) {
            unsigned char c = (unsigned char)*s;
            if (c == '"' || c == '\\') {
                buf[o++] = '\\';
                buf[o++] = (char)c;
            } else if (c < 32 || c == 127) {
                o += (size_t)snprintf(buf + o, cap - o, "\\%03o", c);
            } else {
                buf[o++] = (char)c;
            }
        }
        if (o + 1 < cap) buf[o++] = '"';
        buf[o] = 0;
        break;
    }
    default:
        snprintf(buf, cap, "?");
    }
}

/* Text of a singular or repeated scalar field (repeated: comma list, as --set takes it). */
static void px__field_text(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                           char *buf, size_t cap)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)PX__CAT(msg, f->quantifier_offset);
        const char *arr = *(char *const *)PX__CAT(msg, f->offset);
        buf[0] = 0;
        for (size_t k = 0; k < n; k++) {
            char item[64];
            px__scalar_text(f, arr + k * px__scalar_size(f), item, sizeof item, 0);
            if (k) strncat(buf, ",", cap - strlen(buf) - 1);
            strncat(buf, item, cap - strlen(buf) - 1);
        }
        return;
    }
    px__scalar_text(f, PX__CAT(msg, f->offset), buf, cap, 0);
}

static void px__print_text(FILE *out, const ProtobufCMessage *msg, int indent)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (px__is_message(f)) {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)PX__CAT(msg, f->offset);
            if (!sub) continue;
            fprintf(out, "%*s%s {\n", indent, "", f->name);
            px__print_text(out, sub, indent + 2);
            fprintf(out, "%*s}\n", indent, "");
            continue;
        }
        char val[1024];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)PX__CAT(msg, f->quantifier_offset);
            const char *arr = *(char *const *)PX__CAT(msg, f->offset);
            for (size_t k = 0; k < n; k++) {
                px__scalar_text(f, arr + k * px__scalar_size(f), val, sizeof val, 1);
                fprintf(out, "%*s%s: %s\n", indent, "", f->name, val);
            }
            continue;
        }
        px__scalar_text(f, PX__CAT(msg, f->offset), val, sizeof val, 1);
        fprintf(out, "%*s%s: %s\n", indent, "", f->name, val);
    }
}

void px_config_print_text(FILE *out, const px_config *cfg)
{
    fprintf(out, "# phalanx.Config (effective values, defaults included)\n");
    px__print_text(out, &cfg->base, 0);
}

/* 1 if the field holds its schema default */
static int px__is_default(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)PX__CAT(msg, f->quantifier_offset) == 0;
    const void *p = PX__CAT(msg, f->offset);
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = *(char *const *)p, *def = f->default_value ? f->default_value : "";
        return strcmp(s ? s : "", def) == 0;
    }
    size_t sz = px__scalar_size(f);
    if (f->default_value) return memcmp(p, f->default_value, sz) == 0;
    static const unsigned char zero[8];
    return memcmp(p, zero, sz) == 0;
}

void px_config_print_table(FILE *out, const px_config *cfg)
{
    const ProtobufCMessageDescriptor *d = cfg->base.descriptor;
    fprintf(out, "+--------------------------------+----------------------------------------+\n");
    fprintf(out, "| %-30s | %-38s |\n", "config (* = not the default)", "value");
    fprintf(out, "+--------------------------------+----------------------------------------+\n");
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *sf = &d->fields[i];
        const ProtobufCMessage *sec = *(const ProtobufCMessage *const *)PX__CAT(cfg, sf->offset);
        if (!sec) continue;
        for (unsigned j = 0; j < sec->descriptor->n_fields; j++) {
            const ProtobufCFieldDescriptor *f = &sec->descriptor->fields[j];
            if (px__is_message(f)) continue;
            char name[64], val[256];
            snprintf(name, sizeof name, "%s.%s", sf->name, f->name);
            px__field_text(sec, f, val, sizeof val);
            if (f->label == PROTOBUF_C_LABEL_REPEATED && !val[0])
                snprintf(val, sizeof val, "(none)");
            fprintf(out, "| %c%-29s | %-38.38s |\n", px__is_default(sec, f) ? ' ' : '*', name, val);
        }
    }
    fprintf(out, "+--------------------------------+----------------------------------------+\n");
}

px_status px_config_get_text(const px_config *cfg, const char *path, char *buf, size_t cap)
{
    ProtobufCMessage *holder;
    const ProtobufCFieldDescriptor *f;
    PX_CHECK(px__resolve((ProtobufCMessage *)&cfg->base, path, &holder, &f));
    if (px__is_message(f)) return px_error(PX_EINVAL, "%s is a section, not a field", path);
    px__field_text(holder, f, buf, cap);
    return PX_OK;
}

px_status px_config_each_set_field(const px_config *cfg, const char *section, px_config_field_fn fn,
                                   void *user)
{
    const ProtobufCFieldDescriptor *sf =
        protobuf_c_message_descriptor_get_field_by_name(cfg->base.descriptor, section);
    if (!sf || !px__is_message(sf)) return px_error(PX_EINVAL, "no config section '%s'", section);
    const ProtobufCMessage *sec = *(const ProtobufCMessage *const *)PX__CAT(cfg, sf->offset);
    for (unsigned j = 0; j < sec->descriptor->n_fields; j++) {
        const ProtobufCFieldDescriptor *f = &sec->descriptor->fields[j];
        if (px__is_message(f)) continue;
        int set;
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            set = *(const size_t *)PX__CAT(sec, f->quantifier_offset) > 0;
        else if (f->type == PROTOBUF_C_TYPE_STRING)
            set = *(char *const *)PX__CAT(sec, f->offset) != (char *)f->default_value;
        else
            set = *(const protobuf_c_boolean *)PX__CAT(sec, f->quantifier_offset);
        if (!set) continue;
        char val[1024];
        px__field_text(sec, f, val, sizeof val);
        PX_CHECK(fn(f->name, val, user));
    }
    return PX_OK;
}

/* ---- rules ---------------------------------------------------------------------------------- */

#define PX__RULE(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) return px_error(PX_EINVAL, __VA_ARGS__);                                      \
    } while (0)

static px_status px__check_name(const char *field, const char *s)
{
    PX__RULE(s && s[0], "config: %s must not be empty", field);
    for (const char *p = s; *p; p++)
        PX__RULE(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.',
                 "config: %s = \"%s\": only letters, digits, '_', '-' and '.' are allowed (it "
                 "names a directory)",
                 field, s);
    PX__RULE(strcmp(s, ".") && strcmp(s, ".."), "config: %s = \"%s\" is not a usable name", field,
             s);
    return PX_OK;
}

static px_status px__agg_param_cb(const char *name, const char *value, void *user)
{
    if (!strcmp(name, "rule")) return PX_OK;
    if (!strcmp(name, "seed") && !strcmp(value, "0")) return PX_OK; /* 0 = the run seed */
    px_status st = px_agg_params_set(user, name, value);
    return st < 0 ? px_error_context(st, "config: aggregator.%s", name) : PX_OK;
}

px_status px_config_agg_params(const px_config *cfg, px_agg_params *p)
{
    px_agg_params_default(p);
    p->seed = cfg->run->seed;
    return px_config_each_set_field(cfg, "aggregator", px__agg_param_cb, p);
}

px_status px_config_byz_spec(const px_config *cfg, px_byz_spec *s)
{
    const Phalanx__Byzantine *b = cfg->byzantine;
    memset(s, 0, sizeof *s);
    s->attack = (px_attack)b->attack;
    s->omniscient = b->mode == PHALANX__BYZANTINE__MODE__OMNISCIENT;
    s->n = cfg->cluster->workers;
    s->count = b->count;
    s->rotate = b->rotate;
    s->start_step = b->start_step;
    s->tau = b->tau;
    s->alie_z = b->alie_z;
    s->sigma = b->sigma;
    s->scale = b->scale;
    s->omission_prob = b->omission_prob;
    s->large_value = b->large_value;
    s->mimic_target = b->mimic_target;
    s->crash_step = b->crash_step;
    s->delay_ms = b->delay_ms;
    s->corrupt_bytes = b->corrupt_bytes;
    s->seed = cfg->run->seed;
    return PX_OK;
}

static px_codec_spec px__codec_spec(int format, int rotation, const Phalanx__Compression *c,
                                    int stochastic)
{
    px_codec_spec s = {.format = (px_codec_format)format, .block_size = c->block_size,
                       .stochastic = stochastic};
    if (format != PX_CODEC_FP32)
        s.rht = rotation == PHALANX__COMPRESSION__ROTATION__RHT ||
                (rotation == PHALANX__COMPRESSION__ROTATION__AUTO && format == PX_CODEC_INT8);
    if (format == PX_CODEC_FP32) s.block_size = 0;
    return s;
}

px_status px_config_codecs(const px_config *cfg, px_codec_spec *up, px_codec_spec *down)
{
    const Phalanx__Compression *c = cfg->compression;
    *up = px__codec_spec(c->uplink, c->uplink_rotation, c, c->stochastic && c->uplink);
    *down = px__codec_spec(c->downlink, c->downlink_rotation, c, 0);
    return PX_OK;
}

px_status px_config_validate(const px_config *cfg)
{
    const Phalanx__Run *run = cfg->run;
    PX_CHECK(px__check_name("run.name", run->name));
    PX__RULE(run->output_dir && run->output_dir[0], "config: run.output_dir must not be empty");

    const Phalanx__Model *model = cfg->model;
    PX__RULE(model->n_hidden <= 16, "config: model.hidden has %zu layers; at most 16 are allowed",
             model->n_hidden);
    for (size_t i = 0; i < model->n_hidden; i++)
        PX__RULE(model->hidden[i] >= 1 && model->hidden[i] <= 65536,
                 "config: model.hidden[%zu] = %u must be in [1, 65536]", i, model->hidden[i]);

    const Phalanx__Data *data = cfg->data;
    PX__RULE(data->path && data->path[0], "config: data.path must not be empty");
    PX__RULE(data->batch_size >= 1 && data->batch_size <= 65536,
             "config: data.batch_size = %u must be in [1, 65536]", data->batch_size);

    const Phalanx__Optimizer *opt = cfg->optimizer;
    PX__RULE(isfinite(opt->lr) && opt->lr > 0, "config: optimizer.lr = %g must be > 0",
             (double)opt->lr);
    PX__RULE(isfinite(opt->momentum) && opt->momentum >= 0 && opt->momentum < 1,
             "config: optimizer.momentum = %g must be in [0, 1)", (double)opt->momentum);
    PX__RULE(isfinite(opt->weight_decay) && opt->weight_decay >= 0,
             "config: optimizer.weight_decay = %g must be >= 0", (double)opt->weight_decay);
    PX__RULE(!opt->nesterov || opt->momentum > 0,
             "config: optimizer.nesterov = true needs optimizer.momentum > 0 (it is 0)");
    if (opt->schedule == PHALANX__OPTIMIZER__SCHEDULE__STEP) {
        PX__RULE(opt->step_every >= 1, "config: optimizer.step_every = 0 must be >= 1 for the "
                                       "STEP schedule");
        PX__RULE(isfinite(opt->step_gamma) && opt->step_gamma > 0 && opt->step_gamma <= 1,
                 "config: optimizer.step_gamma = %g must be in (0, 1]", (double)opt->step_gamma);
    }
    if (opt->schedule == PHALANX__OPTIMIZER__SCHEDULE__COSINE)
        PX__RULE(isfinite(opt->min_lr) && opt->min_lr >= 0 && opt->min_lr <= opt->lr,
                 "config: optimizer.min_lr = %g must be in [0, optimizer.lr = %g]",
                 (double)opt->min_lr, (double)opt->lr);
    PX__RULE(opt->warmup_steps <= cfg->schedule->steps,
             "config: optimizer.warmup_steps = %u must not exceed schedule.steps = %u",
             opt->warmup_steps, cfg->schedule->steps);

    const Phalanx__Cluster *cl = cfg->cluster;
    PX__RULE(cl->workers >= 1 && cl->workers <= 4096,
             "config: cluster.workers = %u must be in [1, 4096]", cl->workers);
    PX__RULE(cl->timeout_ms >= 100 && cl->timeout_ms <= 86400000u,
             "config: cluster.timeout_ms = %u must be in [100, 86400000] (0.1 s to a day)",
             cl->timeout_ms);
    PX__RULE(cl->threads <= 1024, "config: cluster.threads = %u must be in [0, 1024]", cl->threads);
    PX__RULE(cl->device == PHALANX__CLUSTER__DEVICE__CPU,
             "config: cluster.device = CUDA is not available in this version: training runs on "
             "the CPU only (set cluster.device = CPU)");

    PX__RULE(cl->f_wait < cl->workers,
             "config: cluster.f_wait = %u must be less than cluster.workers = %u", cl->f_wait,
             cl->workers);
    PX__RULE(cl->step_timeout_ms == 0 || (cl->step_timeout_ms >= 10 && cl->step_timeout_ms <= cl->timeout_ms),
             "config: cluster.step_timeout_ms = %u must be 0 or in [10, cluster.timeout_ms = %u]",
             cl->step_timeout_ms, cl->timeout_ms);

    px_byz_spec byz;
    PX_CHECK(px_config_byz_spec(cfg, &byz));
    PX_CHECK(px_byz_check(&byz));

    const Phalanx__Compression *cc = cfg->compression;
    if (cc->uplink != PHALANX__COMPRESSION__FORMAT__FP32 ||
        cc->downlink != PHALANX__COMPRESSION__FORMAT__FP32)
        PX__RULE(cc->block_size >= 1 && cc->block_size <= PX_CODEC_MAX_BLOCK &&
                     (cc->block_size & (cc->block_size - 1)) == 0,
                 "config: compression.block_size = %u must be a power of two in [1, %u]",
                 cc->block_size, PX_CODEC_MAX_BLOCK);
    PX__RULE(!cc->error_feedback || cc->uplink != PHALANX__COMPRESSION__FORMAT__FP32,
             "config: compression.error_feedback = true needs a compressed uplink "
             "(compression.uplink is FP32)");
    PX__RULE(!cc->stochastic || cc->uplink != PHALANX__COMPRESSION__FORMAT__FP32,
             "config: compression.stochastic = true needs a compressed uplink "
             "(compression.uplink is FP32)");
    px_codec_spec up, down;
    PX_CHECK(px_config_codecs(cfg, &up, &down));
    px_status cst = px_codec_spec_check(&up);
    if (cst == PX_OK) cst = px_codec_spec_check(&down);
    if (cst < 0) return px_error_context(cst, "config: compression");

    const Phalanx__Schedule *sch = cfg->schedule;
    PX__RULE(sch->steps >= 1, "config: schedule.steps = 0 must be >= 1");
    PX__RULE(sch->log_every >= 1, "config: schedule.log_every = 0 must be >= 1");

    px_agg_params ap;
    PX_CHECK(px_config_agg_params(cfg, &ap));
    px_status st = px_agg_validate(cfg->aggregator->rule, &ap, cl->workers);
    if (st < 0)
        return px_error_context(st,
                                "config: aggregator.rule = \"%s\" with "
                                "cluster.workers = %u",
                                cfg->aggregator->rule, cl->workers);
    return PX_OK;
}
