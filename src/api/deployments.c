/* api/deployments.c - the deployments API: verdicts, phases and human triggers.
 *
 *   GET  /api/v1/deployments                  every deployment with phase and verdict
 *   GET  /api/v1/deployments/<name>           the verdict with all its checks
 *   POST /api/v1/deployments/<name>/phase     {"phase":"canary"}: start or advance a phase
 *   POST /api/v1/deployments/<name>/trigger   {"reason":"data corruption detected"}
 *   POST /api/v1/deployments/<name>/reset     back to the first phase
 *
 * Answers use the Prometheus API envelope: {"status":"success","data":...}, or
 * {"status":"error","errorType":"bad_data"|"not_found","error":"..."} with 400 for a
 * malformed body or unknown phase, 404 for an unknown deployment and 405 for a wrong
 * method. A known deployment's GET always answers 200 whatever its verdict (the
 * decision is in the body), so that callers such as an Argo Rollouts web metric can
 * tell faults from verdicts. JSON bodies are parsed with yajl's tree parser and are
 * bounded to 64 KiB. The deployment name is one percent-encoded path segment.
 */
#include "api/api.h"
#include "rules/deploy.h"
#include "util/err.h"
#include "util/time.h"

#include <stdio.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#define MAX_BODY (64 * 1024)
#define MAX_REASON 255

int rg__api_deployments_route(struct rg_api *api, struct rg_http_request *req,
                              struct rg_http_response *res);

/* Answers 200 with @data (JSON text) inside the success envelope. */
static void success(struct rg_http_response *res, const struct rg_buf *data)
{
    rg__api_success_begin(res);
    rg_buf_append(&res->body, data->data ? data->data : "null", data->data ? data->len : 4);
    rg_buf_puts(&res->body, "}");
}

/* Percent-decodes one path segment ('+' stays a plus sign, unlike in a query
 * string). Returns 0, or -1 on an invalid escape or a decoded NUL or slash. */
static int decode_segment(struct rg_slice in, struct rg_buf *out)
{
    for (size_t i = 0; i < in.len; i++) {
        char c = in.ptr[i];
        if (c == '%') {
            int v = 0;
            if (i + 2 >= in.len)
                return -1;
            for (size_t k = 1; k <= 2; k++) {
                char h = in.ptr[i + k];
                int d = h >= '0' && h <= '9' ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (d < 0)
                    return -1;
                v = v * 16 + d;
            }
            if (v == 0 || v == '/')
                return -1;
            c = (char)v;
            i += 2;
        }
        if (rg_buf_putc(out, c))
            return -1;
    }
    return out->data ? 0 : -1;
}

static void answer_deployment(struct rg_api *api, const char *name, struct rg_http_response *res)
{
    struct rg_buf data = { 0 };
    int rc = api->deploy ? rg_deploy_json(api->deploy, name, rg_now_ms(), &data) : RG_ENOENT;

    if (rc == RG_ENOENT)
        rg__api_error(res, 404, "not_found", "unknown deployment \"%s\"", name);
    else if (rc)
        rg__api_error(res, 500, "internal", "%s", rg_strerror(rc));
    else
        success(res, &data);
    rg_buf_cleanup(&data);
}

/* Reads the string member @key of the JSON object in @req's body into @out.
 * Returns 0, or fills @res with a 400 and returns -1. */
static int body_string(const struct rg_http_request *req, struct rg_http_response *res,
                       const char *key, int required, char *out, size_t cap)
{
    const char *path[] = { key, NULL };
    char msg[256];
    yajl_val root, v;
    const char *s;

    out[0] = '\0';
    if (req->body.len > MAX_BODY) {
        rg__api_error(res, 400, "bad_data", "request body larger than %d bytes", MAX_BODY);
        return -1;
    }
    if (req->body.len == 0 || !req->body.data) {
        if (!required)
            return 0;
        rg__api_error(res, 400, "bad_data", "expected a JSON body such as {\"%s\":\"...\"}", key);
        return -1;
    }
    if (memchr(req->body.data, '\0', req->body.len)) {
        rg__api_error(res, 400, "bad_data", "invalid JSON body: NUL byte");
        return -1;
    }
    msg[0] = '\0';
    root = yajl_tree_parse(req->body.data, msg, sizeof(msg));
    if (!root) {
        /* yajl's message spans lines; the first one names the problem. */
        char *nl = strchr(msg, '\n');
        if (nl)
            *nl = '\0';
        rg__api_error(res, 400, "bad_data", "invalid JSON body: %s", msg[0] ? msg : "parse error");
        return -1;
    }
    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        rg__api_error(res, 400, "bad_data", "expected a JSON object such as {\"%s\":\"...\"}", key);
        return -1;
    }
    v = yajl_tree_get(root, path, yajl_t_any);
    if (!v && !required) {
        yajl_tree_free(root);
        return 0;
    }
    s = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
    if (!s || s[0] == '\0') {
        yajl_tree_free(root);
        rg__api_error(res, 400, "bad_data", "\"%s\" must be a non-empty string", key);
        return -1;
    }
    if (strlen(s) >= cap) {
        yajl_tree_free(root);
        rg__api_error(res, 400, "bad_data", "\"%s\" is longer than %zu bytes", key, cap - 1);
        return -1;
    }
    snprintf(out, cap, "%s", s);
    yajl_tree_free(root);
    return 0;
}

static void handle_action(struct rg_api *api, struct rg_http_request *req,
                          struct rg_http_response *res, const char *name, const char *action)
{
    char arg[MAX_REASON + 1];
    int64_t now = rg_now_ms();
    int rc;

    if (strcmp(req->method, "POST") != 0) {
        rg_http_response_header(res, "Allow", "POST");
        rg__api_error(res, 405, "bad_data", "method not allowed");
        return;
    }
    if (!api->deploy || !rg_deploy_verdict(api->deploy, name)) {
        rg__api_error(res, 404, "not_found", "unknown deployment \"%s\"", name);
        return;
    }
    if (strcmp(action, "phase") == 0) {
        if (body_string(req, res, "phase", 1, arg, sizeof(arg)))
            return;
        rc = rg_deploy_start_phase(api->deploy, name, arg, now);
        if (rc == RG_EINVAL) {
            rg__api_error(res, 400, "bad_data", "deployment \"%s\" has no phase \"%s\"", name, arg);
            return;
        }
    } else if (strcmp(action, "trigger") == 0) {
        if (body_string(req, res, "reason", 1, arg, sizeof(arg)))
            return;
        rc = rg_deploy_trigger(api->deploy, name, arg, now);
    } else {
        /* reset takes no arguments; an empty body or {} is fine. */
        if (body_string(req, res, "reason", 0, arg, sizeof(arg)))
            return;
        rc = rg_deploy_reset(api->deploy, name, now);
    }
    if (rc) {
        rg__api_error(res, rc == RG_ENOENT ? 404 : 500,
                      rc == RG_ENOENT ? "not_found" : "internal", "%s", rg_strerror(rc));
        return;
    }
    answer_deployment(api, name, res);
}

int rg__api_deployments_route(struct rg_api *api, struct rg_http_request *req,
                              struct rg_http_response *res)
{
    static const char prefix[] = "/api/v1/deployments";
    static const char *const actions[] = { "phase", "trigger", "reset" };
    struct rg_slice p = req->path, seg;
    const char *action = NULL;
    struct rg_buf name = { 0 };
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;

    if (p.len < sizeof(prefix) - 1 || memcmp(p.ptr, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    if (p.len == sizeof(prefix) - 1 || (p.len == sizeof(prefix) && p.ptr[p.len - 1] == '/')) {
        struct rg_buf data = { 0 };
        if (!get) {
            rg_http_response_header(res, "Allow", "GET");
            rg__api_error(res, 405, "bad_data", "method not allowed");
            return 1;
        }
        if (api->deploy) {
            if (rg_deploy_list_json(api->deploy, rg_now_ms(), &data)) {
                rg__api_error(res, 500, "internal", "out of memory");
                rg_buf_cleanup(&data);
                return 1;
            }
        } else {
            rg_buf_puts(&data, "[]");
        }
        success(res, &data);
        rg_buf_cleanup(&data);
        return 1;
    }
    if (p.ptr[sizeof(prefix) - 1] != '/')
        return 0;
    seg.ptr = p.ptr + sizeof(prefix);
    seg.len = p.len - sizeof(prefix);
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
        size_t n = strlen(actions[i]);
        if (seg.len > n + 1 && seg.ptr[seg.len - n - 1] == '/' &&
            memcmp(seg.ptr + seg.len - n, actions[i], n) == 0) {
            action = actions[i];
            seg.len -= n + 1;
            break;
        }
    }
    if (seg.len == 0 || memchr(seg.ptr, '/', seg.len) ||
        decode_segment(seg, &name)) {
        rg__api_error(res, 404, "not_found", "no such deployment path");
        rg_buf_cleanup(&name);
        return 1;
    }
    if (action) {
        handle_action(api, req, res, name.data, action);
    } else if (!get) {
        rg_http_response_header(res, "Allow", "GET");
        rg__api_error(res, 405, "bad_data", "method not allowed");
    } else {
        answer_deployment(api, name.data, res);
    }
    rg_buf_cleanup(&name);
    return 1;
}
