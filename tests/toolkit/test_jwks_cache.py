"""The JWKS cache: one fetch for many requests, a throttled refetch on an unknown kid, rotation, Cache-Control."""

import threading

import pytest
from idp_resource_server import InvalidToken, JwksCache, KeysUnavailable, TokenValidator
from idp_resource_server.http import cache_lifetime
from idp_resource_server.jwks import parse_jwks

from tests.toolkit.conftest import AUDIENCE, Clock, rsa_key


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def validator(issuer, clock):
    return TokenValidator(issuer.issuer, AUDIENCE, jwks_cache=JwksCache(issuer.issuer, clock=clock))


def test_many_validations_fetch_discovery_and_the_jwks_exactly_once(issuer, validator, mint):
    tokens = [mint() for _ in range(5)]
    for _ in range(40):
        for token in tokens:
            validator.validate(token)
    assert issuer.fetch_count("/.well-known/openid-configuration") == 1
    assert issuer.fetch_count("/jwks.json") == 1


def test_concurrent_first_requests_share_one_fetch(issuer, validator, mint):
    token = mint()
    results, start = [], threading.Barrier(8)

    def call():
        start.wait()
        results.append(validator.validate(token)["sub"])

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 8
    assert issuer.fetch_count() == 1


def test_unknown_kid_triggers_one_refetch_and_a_second_within_the_interval_none(issuer, validator, mint, clock):
    validator.validate(mint())
    stranger, another = rsa_key(), rsa_key()
    with pytest.raises(InvalidToken):
        validator.validate(mint(key=stranger))
    assert issuer.fetch_count() == 1  # the set was fetched this very moment: no point asking again

    clock.advance(11)
    with pytest.raises(InvalidToken) as first:
        validator.validate(mint(key=stranger))
    assert first.value.reason == "unknown_key"
    assert issuer.fetch_count() == 2  # the unknown kid was worth one look

    clock.advance(5)
    with pytest.raises(InvalidToken) as second:
        validator.validate(mint(key=another))
    assert second.value.reason == "unknown_key"
    assert issuer.fetch_count() == 2  # within min_refetch_interval (10 s): no second look

    clock.advance(6)
    with pytest.raises(InvalidToken):
        validator.validate(mint(key=another))
    assert issuer.fetch_count() == 3


def test_a_rotated_in_key_is_picked_up_with_one_refetch(issuer, issuer_key, validator, mint, clock):
    validator.validate(mint())
    clock.advance(30)
    rotated = rsa_key("issuer-key-2")
    issuer.publish(issuer_key, rotated)

    assert validator.validate(mint(key=rotated))["sub"]
    assert validator.validate(mint())["sub"]  # the old key is still published and still verifies
    for _ in range(20):
        validator.validate(mint(key=rotated))
    assert issuer.fetch_count() == 2


def test_a_key_the_issuer_stopped_publishing_stops_verifying_once_the_cache_expires(issuer, issuer_key, validator,
                                                                                     mint, clock):
    successor = rsa_key("issuer-key-2")
    issuer.publish(issuer_key, successor)
    validator.validate(mint())
    issuer.publish(successor)
    clock.advance(301)
    with pytest.raises(InvalidToken) as refused:
        validator.validate(mint())
    assert refused.value.reason == "unknown_key"


def test_cache_control_max_age_sets_when_the_jwks_is_fetched_again(issuer, validator, mint, clock):
    issuer.cache_control = "public, max-age=120"
    token = mint()
    validator.validate(token)
    clock.advance(119)
    validator.validate(token)
    assert issuer.fetch_count() == 1
    clock.advance(2)
    validator.validate(token)
    assert issuer.fetch_count() == 2


@pytest.mark.parametrize("cache_control, refetched_after, not_before", [
    ("no-store", 60, 59),             # never per request: the floor (min_ttl) applies
    ("max-age=5", 60, 59),            # below the floor
    ("max-age=31536000", 86400, 86399),  # above the ceiling (max_ttl)
    (None, 300, 299),                 # no lifetime given: default_ttl
], ids=["no-store", "below-floor", "above-ceiling", "absent"])
def test_jwks_lifetime_is_clamped_between_the_floor_and_the_ceiling(issuer, validator, mint, clock, cache_control,
                                                                    refetched_after, not_before):
    issuer.cache_control = cache_control
    token = mint()
    validator.validate(token)
    clock.advance(not_before)
    validator.validate(token)
    assert issuer.fetch_count() == 1
    clock.advance(refetched_after - not_before)
    validator.validate(token)
    assert issuer.fetch_count() == 2


def test_cached_keys_keep_serving_while_the_issuer_is_down(issuer, validator, mint, clock):
    token = mint()
    validator.validate(token)
    issuer.down = True
    clock.advance(301)
    assert validator.validate(token)["sub"]
    assert issuer.fetch_count() == 2
    clock.advance(5)
    assert validator.validate(token)["sub"]
    assert issuer.fetch_count() == 2  # the failed refresh is retried after min_refetch_interval, not per request
    clock.advance(6)
    issuer.down = False
    assert validator.validate(token)["sub"]
    assert issuer.fetch_count() == 3


def test_without_any_cached_keys_an_unreachable_issuer_fails_closed_and_is_not_hammered(issuer, validator, mint,
                                                                                        clock):
    issuer.down = True
    token = mint()
    for _ in range(5):
        with pytest.raises(KeysUnavailable) as unavailable:
            validator.validate(token)
    assert unavailable.value.status == 503
    assert issuer.fetch_count("/.well-known/openid-configuration") == 1
    clock.advance(10)
    issuer.down = False
    assert validator.validate(token)["sub"]


def test_discovery_naming_another_issuer_is_not_trusted(issuer, mint, clock):
    issuer.issuer = "https://evil.example.com"  # what the document claims from now on
    validator = TokenValidator(issuer.url, AUDIENCE, jwks_cache=JwksCache(issuer.url, clock=clock))
    with pytest.raises(KeysUnavailable):
        validator.validate(mint(iss=issuer.url))
    assert issuer.fetch_count() == 0


def test_an_issuer_over_plain_http_off_loopback_is_refused_at_configuration():
    with pytest.raises(ValueError, match="https"):
        JwksCache("http://id.example.com")
    with pytest.raises(ValueError, match="https"):
        JwksCache(jwks_uri="file:///etc/passwd")


def test_an_explicit_jwks_uri_skips_discovery(issuer, mint, clock):
    cache = JwksCache(jwks_uri=f"{issuer.url}/jwks.json", clock=clock)
    assert TokenValidator(issuer.issuer, AUDIENCE, jwks_cache=cache).validate(mint())["sub"]
    assert issuer.fetch_count("/.well-known/openid-configuration") == 0


def test_unusable_keys_in_the_jwks_are_skipped(issuer_key):
    good = issuer_key.jwk
    small = rsa_key("small")
    small_jwk = {**small.jwk, "n": small.jwk["n"][:172]}  # a 1024-bit modulus
    keys = parse_jwks({"keys": [
        good,
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"},
        {**rsa_key("enc").jwk, "use": "enc"},
        {**rsa_key("ops").jwk, "key_ops": ["encrypt"]},
        {**rsa_key("mismatch").jwk, "alg": "ES256"},
        {**rsa_key("none").jwk, "alg": "none"},
        {**rsa_key("private").jwk, "d": "AQAB"},
        {**rsa_key().jwk, "kid": None},
        small_jwk,
        "not-an-object",
    ]})
    assert list(keys) == [issuer_key.kid]
    assert keys[issuer_key.kid].algorithm == "RS256"


def test_a_kid_published_twice_is_not_used_at_all(issuer, issuer_key, validator, mint):
    impostor = rsa_key(issuer_key.kid)
    issuer.publish(issuer_key, impostor)
    with pytest.raises(InvalidToken) as refused:
        validator.validate(mint())
    assert refused.value.reason == "unknown_key"


def test_key_without_alg_gets_its_types_default_algorithm(issuer_key):
    jwk = {name: value for name, value in issuer_key.jwk.items() if name != "alg"}
    assert parse_jwks({"keys": [jwk]})[issuer_key.kid].algorithm == "RS256"


@pytest.mark.parametrize("header, age, expected", [
    ("public, max-age=300", None, 300), ("max-age=300", "100", 200), ("max-age=\"60\"", None, 60),
    ("no-cache", None, 0), ("private, no-store", None, 0), ("public", None, None), (None, None, None),
    ("max-age=10", "50", 0),
])
def test_cache_control_is_read_as_rfc_9111_says(header, age, expected):
    assert cache_lifetime(header, age) == expected
