#include <stdlib.h>

#include <mqtt_protocol.h>

#include "lg.h"

/*
 * The baseline responder: what an ordinary MQTT client does to answer requests, so rr runs
 * against it measure the broker round trip without the plugin, the bridge or a handler.
 */
void lg_echo_on_message(struct lg_client *cl, const struct mosquitto_message *msg,
                        const mosquitto_property *props)
{
    char *response_topic = NULL;
    void *corr = NULL;
    uint16_t corr_len = 0;
    mosquitto_property *out = NULL;
    int rc;

    mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &response_topic, false);
    if (!response_topic) {
        cl->w->c.unanswerable++;
        return;
    }
    mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr, &corr_len, false);

    rc = corr ? mosquitto_property_add_binary(&out, MQTT_PROP_CORRELATION_DATA, corr, corr_len)
              : MOSQ_ERR_SUCCESS;
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_publish_v5(cl->mosq, NULL, response_topic, msg->payloadlen, msg->payload,
                                  msg->qos, false, out);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        cl->w->c.served++;
    } else if (rc != MOSQ_ERR_NOMEM && rc != MOSQ_ERR_NO_CONN) {
        /* A requester's bad Response Topic is its problem; the server goes on. */
        cl->w->c.unanswerable++;
    } else {
        lg_client_fail(cl, "client %s cannot answer on %s: %s", cl->id, response_topic,
                       mosquitto_strerror(rc));
    }
    mosquitto_property_free_all(&out);
    free(corr);
    free(response_topic);
}
