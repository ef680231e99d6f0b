# Varnish 7 in front of shop-http, purged by surrogate key (vmod_xkey, Debian's
# `varnish-modules`). The shop's responses carry `xkey: product:42 @cache:memory.product`;
# on every invalidation the shop sends `PURGE /` with `xkey: <keys>` (SHOP_VARNISH).
vcl 4.1;

import xkey;

# The shop (load.sh and the tests write the port they use here).
backend shop {
    .host = "127.0.0.1";
    .port = "8080";
}

# Who may purge: the shop's hosts.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.xkey) {
            return (synth(400, "No xkey header"));
        }
        # A hard purge: an invalidated response is never served again, not even stale.
        set req.http.x-purged = xkey.purge(req.http.xkey);
        return (synth(200, "Purged"));
    }
}

sub vcl_backend_response {
    # Keep an expired response an hour, to revalidate it with `If-None-Match` (the shop's
    # ETags are its content's: an unchanged product is a `304`, no body).
    set beresp.keep = 1h;
}

sub vcl_synth {
    if (req.method == "PURGE") {
        set resp.http.x-purged = req.http.x-purged;
    }
}

sub vcl_deliver {
    # The surrogate keys are for Varnish: browsers need not see them.
    unset resp.http.xkey;
    unset resp.http.surrogate-key;
    if (obj.hits > 0) {
        set resp.http.x-edge = "HIT";
    } else {
        set resp.http.x-edge = "MISS";
    }
}
