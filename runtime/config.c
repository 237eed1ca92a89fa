/* config.c - config.pb: decoding with strict checks, --set overrides and the printed forms.
 * Generic over the schema: overrides and printing walk the protobuf-c field descriptors, so a
 * field added to proto/config.proto is settable and printed without code here. The rules
 * between fields are written out by hand in config_rules.c, and so is the typed mapping of the
 * fields whose default is a library's (px_config_fill_library_defaults). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    if (st == PX_OK) st = px_config_fill_library_defaults((px_config *)m);
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
    if (st == PX_OK) st = px_config_fill_library_defaults(*out);
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

/* Integers from the command line are decimal, and a leading zero is refused: under C's base 0
 * "010" would be 8 (octal) and "0x10" 16, which a user writing workers=010 does not mean, and
 * reading them as 10 would silently disagree with any tool that does read octal. */
static px_status px__parse_int(const char *path, const char *s, long long lo, unsigned long long hi,
                               int is_unsigned, void *out, size_t size)
{
    char *end;
    errno = 0;
    while (isspace((unsigned char)*s))
        s++;
    const char *digits = s + (*s == '-');
    if (digits[0] == '0' && isdigit((unsigned char)digits[1]))
        return px_error(PX_EINVAL, "%s: expected a decimal integer without leading zeros, got '%s'",
                        path, s);
    if (is_unsigned) {
        if (*s == '-' || !*s)
            return px_error(PX_EINVAL, "%s: expected a non-negative integer, got '%s'", path, s);
        unsigned long long v = isdigit((unsigned char)*s) ? strtoull(s, &end, 10) : 0;
        if (!isdigit((unsigned char)*s) || errno || *end || v > hi)
            return px_error(PX_EINVAL, "%s: expected a decimal integer in [0, %llu], got '%s'",
                            path, hi, s);
        if (size == 4)
            *(uint32_t *)out = (uint32_t)v;
        else
            *(uint64_t *)out = v;
    } else {
        long long v = isdigit((unsigned char)*digits) ? strtoll(s, &end, 10) : 0;
        if (!isdigit((unsigned char)*digits) || errno || *end || v < lo ||
            (v > 0 && (unsigned long long)v > hi))
            return px_error(PX_EINVAL, "%s: expected a decimal integer in [%lld, %llu], got '%s'",
                            path, lo, hi, s);
        if (size == 4)
            *(int32_t *)out = (int32_t)v;
        else
            *(int64_t *)out = v;
    }
    return PX_OK;
}

/* A float or double from the command line: decimal, finite, and stored as written up to
 * rounding -- a non-zero value that the field's type would hold as 0 or as a subnormal (lr =
 * 1e-46 becomes 0 in a float, and is then reported as 0) is refused, naming the field. */
static px_status px__parse_real(const char *path, const char *s, int is_float, void *out)
{
    const char *mant = s;
    while (isspace((unsigned char)*mant))
        mant++;
    if (*mant == '+' || *mant == '-') mant++;
    if (strchr(s, 'x') || strchr(s, 'X'))
        return px_error(PX_EINVAL, "%s: expected a decimal number, got '%s'", path, s);
    char *end;
    double v = strtod(s, &end); /* errno: ERANGE on underflow too, judged below by value */
    if (!*s || *end || !isfinite(v) || (is_float && fabs(v) > FLT_MAX))
        return px_error(PX_EINVAL, "%s: expected a finite number, got '%s'", path, s);
    /* non-zero as written: a digit 1-9 before the exponent */
    int nonzero = 0;
    for (const char *c = mant; *c && *c != 'e' && *c != 'E'; c++)
        nonzero |= *c >= '1' && *c <= '9';
    double smallest = is_float ? FLT_MIN : DBL_MIN;
    if (nonzero && !(fabs(v) >= smallest))
        return px_error(PX_EINVAL,
                        "%s: %s is not zero but would be stored as 0 or a subnormal %s (the "
                        "smallest normal is %g)",
                        path, s, is_float ? "float" : "double", smallest);
    if (is_float)
        *(float *)out = (float)v;
    else
        *(double *)out = v;
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
    case PROTOBUF_C_TYPE_DOUBLE:
        return px__parse_real(path, s, f->type == PROTOBUF_C_TYPE_FLOAT, out);
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
            char elem_path[300];
            snprintf(elem_path, sizeof elem_path, "%s[%zu]", path, k);
            if (len >= sizeof item) { /* refused whole: a cut item could read as another value */
                free(arr);
                return px_error(PX_EINVAL,
                                "%s: an item of %zu characters, more than the %zu a "
                                "list item may have",
                                elem_path, len, sizeof item - 1);
            }
            memcpy(item, p, len);
            item[len] = 0;
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

/* 1 if field f holds the same value in sections a and b (of the same message type) */
static int px__same_value(const ProtobufCMessage *a, const ProtobufCMessage *b,
                          const ProtobufCFieldDescriptor *f)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t na = *(const size_t *)PX__CAT(a, f->quantifier_offset);
        size_t nb = *(const size_t *)PX__CAT(b, f->quantifier_offset);
        if (na != nb) return 0;
        if (na == 0) return 1;
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            char *const *sa = *(char **const *)PX__CAT(a, f->offset);
            char *const *sb = *(char **const *)PX__CAT(b, f->offset);
            for (size_t k = 0; k < na; k++)
                if (strcmp(sa[k] ? sa[k] : "", sb[k] ? sb[k] : "")) return 0;
            return 1;
        }
        return memcmp(*(void *const *)PX__CAT(a, f->offset), *(void *const *)PX__CAT(b, f->offset),
                      na * px__scalar_size(f)) == 0;
    }
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *sa = *(char *const *)PX__CAT(a, f->offset);
        const char *sb = *(char *const *)PX__CAT(b, f->offset);
        return strcmp(sa ? sa : "", sb ? sb : "") == 0;
    }
    return memcmp(PX__CAT(a, f->offset), PX__CAT(b, f->offset), px__scalar_size(f)) == 0;
}

void px_config_print_table(FILE *out, const px_config *cfg)
{
    const ProtobufCMessageDescriptor *d = cfg->base.descriptor;
    /* the defaults to compare with: the schema's and the libraries', as a config holds them */
    px_config *def = NULL;
    if (px_config_default(&def) < 0) def = NULL; /* out of memory: no marks */
    fprintf(out, "+--------------------------------+----------------------------------------+\n");
    fprintf(out, "| %-30s | %-38s |\n", "config (* = not the default)", "value");
    fprintf(out, "+--------------------------------+----------------------------------------+\n");
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *sf = &d->fields[i];
        const ProtobufCMessage *sec = *(const ProtobufCMessage *const *)PX__CAT(cfg, sf->offset);
        if (!sec) continue;
        const ProtobufCMessage *dsec =
            def ? *(const ProtobufCMessage *const *)PX__CAT(def, sf->offset) : NULL;
        for (unsigned j = 0; j < sec->descriptor->n_fields; j++) {
            const ProtobufCFieldDescriptor *f = &sec->descriptor->fields[j];
            if (px__is_message(f)) continue;
            char name[64], val[256];
            snprintf(name, sizeof name, "%s.%s", sf->name, f->name);
            px__field_text(sec, f, val, sizeof val);
            if (f->label == PROTOBUF_C_LABEL_REPEATED && !val[0])
                snprintf(val, sizeof val, "(none)");
            int same = !dsec || px__same_value(sec, dsec, f);
            fprintf(out, "| %c%-29s | %-38.38s |\n", same ? ' ' : '*', name, val);
        }
    }
    fprintf(out, "+--------------------------------+----------------------------------------+\n");
    px_config_free(def);
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
