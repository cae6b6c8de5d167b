/* mzb-echo: answers every request with its own payload. The simplest handler there is. */
#include "example_common.h"

static int echo(struct mzb_handler *h, struct mzb_request *req, void *arg)
{
    const void *payload;
    size_t len;

    (void)arg;
    mzbx_log_request("echo", req);
    payload = mzb_request_payload(req, &len);

    /* A reply that cannot be queued is logged by the library; the bridge retries elsewhere. */
    mzb_handler_reply(h, req, payload, len);
    return MZBX_EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct mzbx_program prog = {
        "mzb-echo", "Answers every request of SERVICE with the payload it carried.", 0};

    return mzbx_run(&prog, argc, argv, echo, NULL);
}
