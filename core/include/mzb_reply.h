/*
 * mzb_reply: where a request's reply may go. A route's reply_pattern limits
 * the Response Topic a requester may ask for; its reply_topic template names
 * the reply topic when the requester gave none (docs/protocol.md).
 *
 * Placeholders: {client_id} and {username} stand for the requester's own
 * client id and user name; {topic} (templates only) for the request's topic.
 * Values are always literal text: a '/' in a value spans levels, and '+' or
 * '#' in a value are characters, never wildcards.
 *
 * None of these functions allocates or blocks; all may run on the broker's
 * thread.
 */
#ifndef MZB_REPLY_H
#define MZB_REPLY_H

#include <stddef.h>

enum mzb_reply_err {
    MZB_REPLY_OK = 0,
    MZB_REPLY_E_INVALID = 1,     /* a pattern or template breaks the rules (see why) */
    MZB_REPLY_E_PLACEHOLDER = 2, /* a template names an unknown placeholder */
    MZB_REPLY_E_NO_USERNAME = 3, /* {username} is needed but the client has none */
    MZB_REPLY_E_TOO_LONG = 4,    /* the expanded template does not fit the buffer */
};

/* A static English sentence for an mzb_reply_err code. */
const char *mzb_reply_strerror(int err);

/*
 * Validates a reply_pattern for the config loader: a topic filter (MQTT rules
 * for '+' and '#') whose levels may also be exactly {client_id} or
 * {username}. A '{' or '}' anywhere else is refused, as is a pattern starting
 * with '$' (no reply topic may start with '$', so it could never match).
 * Returns MZB_REPLY_OK, or MZB_REPLY_E_INVALID with a one-sentence reason
 * written to why (truncated to why_cap bytes, NUL-terminated; why may be NULL).
 */
int mzb_reply_pattern_check(const char *pattern, char *why, size_t why_cap);

/*
 * Returns 1 when topic (topic_len bytes, not NUL-terminated) matches pattern,
 * else 0. The pattern is assumed valid (mzb_reply_pattern_check). A
 * placeholder level matches exactly the text of its value followed by '/' or
 * the end of the topic; a NULL client_id or username matches nothing. The
 * caller must still check the topic with mzb_reply_topic_check.
 */
int mzb_reply_pattern_match(const char *pattern, const char *topic, size_t topic_len,
                            const char *client_id, const char *username);

/*
 * Expands a reply_topic template into out (cap bytes): {client_id},
 * {username} and {topic} (topic_len bytes) are replaced wherever they occur;
 * values are copied as they are, never expanded again. On success writes a
 * NUL-terminated result, sets *out_len (if out_len is not NULL) to its length
 * without the NUL and returns MZB_REPLY_OK. Otherwise returns
 * MZB_REPLY_E_PLACEHOLDER (unknown name), MZB_REPLY_E_INVALID (unbalanced
 * brace, or a NULL client_id), MZB_REPLY_E_NO_USERNAME, or
 * MZB_REPLY_E_TOO_LONG (result plus NUL exceeds cap); out is then unspecified.
 * The caller checks the result with mzb_reply_topic_check before using it.
 */
int mzb_reply_template_expand(const char *tmpl, const char *client_id, const char *username,
                              const char *topic, size_t topic_len, char *out, size_t cap,
                              size_t *out_len);

/*
 * Validates a reply_topic template for the config loader: not empty, valid
 * UTF-8, at most 65,535 bytes, braces balanced and naming only {client_id},
 * {username} or {topic}, no '+' or '#', not starting with '$'. Returns
 * MZB_REPLY_OK or an error code with a one-sentence reason in why (as for
 * mzb_reply_pattern_check).
 */
int mzb_reply_template_check(const char *tmpl, char *why, size_t why_cap);

#endif
