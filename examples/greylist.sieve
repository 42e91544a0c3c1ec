# Greylisting, as Petrel ships it: `greylist.enable = true` runs this
# script at the RCPT stage for clients that are not authenticated and not
# in greylist.exempt-networks. It is also a starting point for your own
# policy: store a copy with `petrel sieve global put NAME FILE` and name
# it in [sieve.stages] rcpt = "NAME".
#
# A triplet is the client's network (its /24, or /64 for IPv6), the
# envelope sender and the recipient. The first attempt of a triplet not
# seen before is deferred with a temporary error; a retry at least
# greylist.delay seconds later (and within greylist.retry-window) is
# accepted, and the triplet is then let through for greylist.expiry
# seconds. Real mail servers retry; most spam engines do not.

require ["variables", "envelope", "reject", "vnd.stalwart.expressions"];

set "triplet" "${env.remote_net} ${envelope.from} ${envelope.to}";
let "first" "kv_get('greylist', triplet)";

if eval "first == 'passed'" {
    stop;
}
if eval "first == ''" {
    # Not seen: remember when, and defer.
    eval "kv_set('greylist', triplet, now(), env.greylist_retry_window)";
    reject "451 4.7.1 Greylisted: please try again in a few minutes";
    stop;
}
if eval "now() - first < env.greylist_delay" {
    # A retry that came too soon: still deferred, the first time kept.
    reject "451 4.7.1 Greylisted: please try again in a few minutes";
    stop;
}
# A retry after the delay: let this triplet through from now on.
eval "kv_set('greylist', triplet, 'passed', env.greylist_expiry)";
