/* transport_stop.c - the end of a run, as every transport of several ranks ends it (see
 * transport.h, send_stop): after the stop message, the server takes in what the worker ranks
 * still send until each rank told to stop has sent its last message. */
#include "comm/transport.h"

px_status px_transport_await_last(px_transport *t, int *told, px_msg_test is_last,
                                  double deadline_ms)
{
    int waiting = 0;
    for (int r = 1; r < t->world; r++)
        waiting += told[r] != 0;
    while (waiting > 0) {
        const unsigned char *in;
        size_t in_len;
        int src = -1;
        px_status rs = t->recv(t, &in, &in_len, &src, deadline_ms);
        if (rs == PX_ETIMEOUT)
            return px_error(PX_ETIMEOUT,
                            "%d rank%s did not answer the stop message before the deadline",
                            waiting, waiting > 1 ? "s" : "");
        if (rs == PX_EPROTO) continue; /* an illegal message, dropped: not the last */
        if (rs < 0) return rs; /* the transport failed: polling again would not end sooner */
        if (src > 0 && src < t->world && told[src] && is_last(in, in_len)) {
            told[src] = 0;
            waiting--;
        }
    }
    return PX_OK;
}

px_status px_transport_stop_result(px_status st, int untold)
{
    if (st == PX_OK && untold)
        return px_error(PX_ETIMEOUT, "%d rank%s never took the last messages (stalled or dead)",
                        untold, untold > 1 ? "s" : "");
    return st;
}
