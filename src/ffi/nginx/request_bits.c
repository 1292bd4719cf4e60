/*
 * Bitfields of ngx_http_request_t, read and written by the C compiler that
 * lays them out.  bindgen 0.72 (the one nginx-sys 0.5 is pinned to) places a
 * bitfield run that shares its storage unit with a preceding field at the
 * wrong bits (rust-bindgen#3384); nginx 1.29.0 put "in_port_t port" right
 * before the request's bitfields, so there its setters write into
 * r->buffered and every keep-alive connection hangs after one response.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


extern ngx_module_t  ngx_http_copy_filter_module;


ngx_uint_t
ngx_http_sticky_session_header_only(ngx_http_request_t *r)
{
    return r->header_only;
}


ngx_uint_t
ngx_http_sticky_session_body_no_buffering(ngx_http_request_t *r)
{
    return r->request_body_no_buffering;
}


/* Keeps the request alive until ngx_http_finalize_request() (a handler that
 * answers later returns NGX_DONE). */
void
ngx_http_sticky_session_hold(ngx_http_request_t *r)
{
    r->main->count++;
}


/* Runs ev's handler on the next turn of the event loop. */
void
ngx_http_sticky_session_post(ngx_event_t *ev)
{
    ngx_post_event(ev, &ngx_posted_events);
}


/* Asks for the body in memory; answers whether it was asked for already. */
ngx_uint_t
ngx_http_sticky_session_need_in_memory(ngx_http_request_t *r)
{
    ngx_uint_t  was = r->filter_need_in_memory;

    r->filter_need_in_memory = 1;

    return was;
}


/*
 * Gives the rest of the body back to sendfile once the learner stopped
 * reading: the copy filter decided on its first call, so its context is told
 * too (unless the main request needs the body in memory for itself).
 */
void
ngx_http_sticky_session_release_in_memory(ngx_http_request_t *r)
{
    ngx_output_chain_ctx_t  *ctx;

    r->filter_need_in_memory = 0;

    ctx = ngx_http_get_module_ctx(r, ngx_http_copy_filter_module);

    if (ctx != NULL && !r->main_filter_need_in_memory) {
        ctx->need_in_memory = 0;
    }
}


/* Marks a connection of ours (to Redis) idle, so a worker shutting down
 * gracefully closes it (ngx_close_idle_connections) instead of waiting. */
void
ngx_http_sticky_session_conn_idle(ngx_connection_t *c)
{
    c->idle = 1;
}


/* Whether nginx asked an idle connection of ours to close. */
ngx_uint_t
ngx_http_sticky_session_conn_closing(ngx_connection_t *c)
{
    return c->close;
}


/* The route a server line names explicitly (nginx 1.29.6+, "route=NAME"). */
ngx_uint_t
ngx_http_sticky_session_peer_route(ngx_http_upstream_rr_peer_t *peer,
    ngx_str_t *route)
{
#if (NGX_HTTP_UPSTREAM_SID)
    if (peer->route) {
        *route = peer->sid;
        return 1;
    }
#endif

    return 0;
}
