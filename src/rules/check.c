/* rules/check.c - the checks behind `rollgate check`. */
#include "rules/check.h"
#include "config/config.h"
#include "config/yaml.h"
#include "notify/notifier.h"
#include "query/client.h"
#include "rules/checklist.h"
#include "rules/manager.h"
#include "rules/rulefile.h"
#include "util/err.h"
#include "util/file.h"

#include <string.h>

/* The largest file `check` reads, as rg_rulefile_load does. */
#define MAX_FILE_BYTES (64u << 20)

static int count_rules(const struct rg_rulefile *f)
{
    int n = 0;
    for (size_t g = 0; g < f->ngroups; g++)
        n += (int)f->groups[g].nrules;
    return n;
}

static int check_rulefile(const char *path, int dump, struct rg_buf *problems,
                          struct rg_buf *dump_out, struct rg_buf *summary)
{
    struct rg_rulefile *f = NULL;
    int rc = rg_rulefile_load(path, &f, problems);

    if (rc)
        return rc == RG_ENOMEM ? rc : RG_EINVAL;
    if (summary)
        rg_buf_printf(summary, "%s: %zu rule groups, %d rules", path, f->ngroups, count_rules(f));
    if (dump)
        rc = rg_rulefile_dump(f, dump_out);
    rg_rulefile_free(f);
    return rc;
}

static int source_known(const char *name, void *ud)
{
    return rg_query_sources_find(ud, name) != NULL;
}

struct rule_walk {
    const struct rg_query_sources *sources;   /* for groups' `source:` names */
    int dump;
    struct rg_buf *problems;
    struct rg_buf *dump_out;
    int files;
    int rules;
    int bad;
};

/* Counts and dumps the rule files; their problems were already reported by
 * rg_rules_check(), so the walk's own messages are dropped. */
static int each_rule_file(const char *path, void *ud)
{
    struct rule_walk *w = ud;
    struct rg_rulefile *f = NULL;
    struct rg_buf ignored = { 0 };
    int rc = rg_rulefile_load(path, &f, &ignored);

    rg_buf_cleanup(&ignored);
    if (rc == RG_ENOMEM)
        return rc;
    if (rc) {
        w->bad++;
        return 0;
    }
    w->files++;
    w->rules += count_rules(f);
    for (size_t g = 0; g < f->ngroups; g++) {
        const struct rg_rule_group *grp = &f->groups[g];
        if (grp->source && w->sources && !rg_query_sources_find(w->sources, grp->source)) {
            rg_buf_printf(w->problems, "%s:%d:%d: group \"%s\": unknown source \"%s\"\n",
                          path, grp->source_line, grp->source_col, grp->name, grp->source);
            w->bad++;
        }
    }
    if (w->dump) {
        rg_buf_printf(w->dump_out, "# rule file %s\n", path);
        rc = rg_rulefile_dump(f, w->dump_out);
    }
    rg_rulefile_free(f);
    return rc;
}

static int check_config(const char *path, int dump, struct rg_buf *problems,
                        struct rg_buf *dump_out, struct rg_buf *summary)
{
    struct rg_config cfg;
    struct rg_checklist *cl = NULL;
    struct rg_query_sources *sources = NULL;
    struct rule_walk w = { NULL, dump, problems, dump_out, 0, 0, 0 };
    struct rg_buf rules_dump = { 0 };
    int bad = 0;
    int rc;

    rg_config_default(&cfg);
    rc = rg_config_load_file(path, &cfg, problems);
    if (rc == RG_ENOMEM)
        goto out;
    if (rc == RG_EIO || !cfg.yaml) {
        rc = RG_EINVAL;
        goto out;
    }
    bad = rc != 0;
    /* The global section (evaluation interval, external labels and URL) and every
     * rule file of rule_files. */
    rc = rg_rules_check(&cfg, &rules_dump);
    if (rc == RG_ENOMEM)
        goto out;
    if (rc) {
        rg_buf_append(problems, rules_dump.data ? rules_dump.data : "", rules_dump.len);
        bad = 1;
    }
    rg_buf_reset(&rules_dump);
    /* Sources, secrets included; the names rule groups, signals and deployments use
     * are checked against them below. */
    rc = rg_query_sources_parse(&cfg, &sources, problems);
    if (rc == RG_ENOMEM)
        goto out;
    bad |= rc != 0;
    w.sources = sources;
    w.dump_out = &rules_dump;
    {
        struct rg_buf ignored = { 0 };
        rc = rg_rulefile_each_path(&cfg, each_rule_file, &w, &ignored);
        rg_buf_cleanup(&ignored);
    }
    if (rc == RG_ENOMEM)
        goto out;
    bad |= rc != 0 || w.bad;
    rc = rg_checklist_parse(&cfg, &cl, problems);
    if (rc == RG_ENOMEM)
        goto out;
    bad |= rc != 0;
    if (cl && sources && rg_checklist_check_sources(cl, source_known, sources, problems))
        bad = 1;
    /* Notifiers, secrets included: a missing secret file is a problem here too. */
    rc = rg_notify_config_check(&cfg, problems);
    if (rc == RG_ENOMEM)
        goto out;
    bad |= rc != 0;
    if (!bad && summary)
        rg_buf_printf(summary, "%s: %zu signals, %zu phases, %zu deployments, %d rule files "
                      "with %d rules", path, cl->nsignals, cl->nphases, cl->ndeployments,
                      w.files, w.rules);
    if (!bad && dump) {
        struct rg_notify_config nc;
        struct rg_buf ignored = { 0 };
        if ((rc = rg_checklist_dump(cl, dump_out)))
            goto out;
        if (rg_notify_config_parse(&cfg, &nc, &ignored) == 0) {
            rc = rg_notify_config_dump(&nc, dump_out);
            rg_notify_config_cleanup(&nc);
        }
        rg_buf_cleanup(&ignored);
        if (rc ||
            (rc = rg_buf_append(dump_out, rules_dump.data ? rules_dump.data : "", rules_dump.len)))
            goto out;
    }
    rc = bad ? RG_EINVAL : 0;
out:
    rg_query_sources_free(sources);
    rg_checklist_free(cl);
    rg_buf_cleanup(&rules_dump);
    rg_config_cleanup(&cfg);
    return rc;
}

int rg_check_file(const char *path, int dump, struct rg_buf *problems, struct rg_buf *dump_out,
                  struct rg_buf *summary)
{
    struct rg_buf text = { 0 };
    struct rg_yaml_node *root = NULL;
    char msg[512];
    int is_rules;
    int rc;

    rc = rg_file_read(path, MAX_FILE_BYTES, &text);
    if (rc) {
        rg_buf_printf(problems, "%s: %s\n", path,
                      rc == RG_ENOENT ? "no such file" : rg_strerror(rc));
        rg_buf_cleanup(&text);
        return RG_EINVAL;
    }
    rc = rg_yaml_parse(text.data ? text.data : "", text.len, &root, msg, sizeof(msg));
    rg_buf_cleanup(&text);
    if (rc == RG_EPARSE) {
        rg_buf_printf(problems, "%s:%s\n", path, msg);
        return RG_EINVAL;
    }
    if (rc)
        return rc;
    is_rules = rg_yaml_get(root, "groups") != NULL;
    rg_yaml_free(root);
    return is_rules ? check_rulefile(path, dump, problems, dump_out, summary)
                    : check_config(path, dump, problems, dump_out, summary);
}
