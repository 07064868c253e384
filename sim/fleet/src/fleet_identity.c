/*
 * fleet_identity.c - per-device certificates, passwords and user names (fleet_identity.h).
 *
 * The password file is read once into one buffer; its entries are sorted by id and found
 * by binary search, so 100,000 devices cost one sort, not a scan each.
 */
#include "sim/fleet_identity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/fs.h"

#define IDENTITY_FILE_MAX (64u << 20) /* a password file larger than this is a mistake */

struct identity_entry {
    const char *id, *password; /* into text */
};

struct fleet_identity {
    char *cert_dir;
    bool id_as_username;
    char *text;                /* the password file, its ':' and newlines made NULs */
    size_t text_len;
    struct identity_entry *entries;
    size_t n_entries;
};

static int identity_cmp(const void *a, const void *b)
{
    return strcmp(((const struct identity_entry *)a)->id, ((const struct identity_entry *)b)->id);
}

/* The whole file into a NUL-terminated buffer. */
static int identity_slurp(const char *path, char **out, size_t *len)
{
    if (sim_fs_read_all(path, IDENTITY_FILE_MAX, out, len) == 0)
        return SIM_OK;
    int e = errno;
    if (e == EFBIG || e == ENOMEM) {
        fprintf(stderr, "scansim run: --password-file %s: larger than %u MiB or out of "
                "memory\n", path, IDENTITY_FILE_MAX >> 20);
        return e == EFBIG ? SIM_ERR_INVAL : SIM_ERR_NOMEM;
    }
    fprintf(stderr, "scansim run: --password-file %s: cannot read it: %s\n", path,
            strerror(e));
    return SIM_ERR_IO;
}

/* Split "id:password" lines (blank lines and '#' comments skipped) into entries. */
static int identity_parse(struct fleet_identity *ident, const char *path)
{
    size_t lines = 1, line = 0;
    char *p = ident->text, *end = ident->text + ident->text_len;

    for (char *q = p; q < end; q++)
        lines += *q == '\n';
    ident->entries = calloc(lines, sizeof *ident->entries);
    if (!ident->entries)
        return SIM_ERR_NOMEM;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *colon;
        line++;
        if (!nl)
            nl = end;
        *nl = '\0';
        if (nl > p && nl[-1] == '\r')
            nl[-1] = '\0';
        if (*p && *p != '#') {
            colon = strchr(p, ':');
            if (!colon || colon == p || memchr(p, ' ', (size_t)(colon - p)) ||
                memchr(p, '\t', (size_t)(colon - p))) {
                fprintf(stderr, "scansim run: --password-file %s, line %zu: expected "
                        "'id:password' (a device id without spaces, a colon, its password)\n",
                        path, line);
                return SIM_ERR_INVAL;
            }
            *colon = '\0';
            ident->entries[ident->n_entries++] = (struct identity_entry){ p, colon + 1 };
        }
        p = nl + 1;
    }
    qsort(ident->entries, ident->n_entries, sizeof *ident->entries, identity_cmp);
    for (size_t i = 1; i < ident->n_entries; i++)
        if (strcmp(ident->entries[i - 1].id, ident->entries[i].id) == 0) {
            fprintf(stderr, "scansim run: --password-file %s: device %s is listed twice\n", path,
                    ident->entries[i].id);
            return SIM_ERR_INVAL;
        }
    return SIM_OK;
}

int fleet_identity_load(const char *cert_dir, const char *password_file, bool id_as_username,
                        struct fleet_identity **out)
{
    struct fleet_identity *ident;
    int rc;

    *out = NULL;
    if (!cert_dir && !password_file && !id_as_username)
        return SIM_OK;
    if (!(ident = calloc(1, sizeof *ident)))
        return SIM_ERR_NOMEM;
    ident->id_as_username = id_as_username;
    if (cert_dir && !(ident->cert_dir = strdup(cert_dir))) {
        fleet_identity_free(ident);
        return SIM_ERR_NOMEM;
    }
    if (password_file) {
        rc = identity_slurp(password_file, &ident->text, &ident->text_len);
        if (rc == SIM_OK)
            rc = identity_parse(ident, password_file);
        if (rc != SIM_OK) {
            fleet_identity_free(ident);
            return rc;
        }
    }
    *out = ident;
    return SIM_OK;
}

/* path = dir/id.ext, readable. */
static int identity_file(const char *dir, const char *id, const char *ext, const char *what,
                         char *path, size_t cap)
{
    int n = snprintf(path, cap, "%s/%s.%s", dir, id, ext);

    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "scansim run: --cert-dir %s: the path of device %s's %s is too long\n",
                dir, id, what);
        return SIM_ERR_INVAL;
    }
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "scansim run: --cert-dir: device %s has no %s %s (%s); every device "
                "needs <id>.crt and <id>.key there\n", id, what, path, strerror(errno));
        return SIM_ERR_INVAL;
    }
    return SIM_OK;
}

int fleet_identity_apply(const struct fleet_identity *ident, const char *id,
                         struct sim_transport_opts *t, char *crt, char *key, size_t cap)
{
    if (!ident)
        return SIM_OK;
    if (ident->id_as_username)
        t->username = id;
    if (ident->text) {
        struct identity_entry k = { id, NULL }, *e;
        e = bsearch(&k, ident->entries, ident->n_entries, sizeof *ident->entries, identity_cmp);
        if (!e) {
            fprintf(stderr, "scansim run: --password-file: no password for device %s (each "
                    "device needs an 'id:password' line)\n", id);
            return SIM_ERR_INVAL;
        }
        t->password = e->password;
    }
    if (ident->cert_dir) {
        if (identity_file(ident->cert_dir, id, "crt", "certificate", crt, cap) != SIM_OK ||
            identity_file(ident->cert_dir, id, "key", "key", key, cap) != SIM_OK)
            return SIM_ERR_INVAL;
        t->certfile = crt;
        t->keyfile = key;
    }
    return SIM_OK;
}

void fleet_identity_free(struct fleet_identity *ident)
{
    if (!ident)
        return;
    if (ident->text) {
        memset(ident->text, 0, ident->text_len); /* the passwords */
        free(ident->text);
    }
    free(ident->entries);
    free(ident->cert_dir);
    free(ident);
}
