"""An Open311 GeoReport v2 client talks to the hub's endpoint, as a city app
would: civicbot's Open311Client (JSON, and the only maintained Python client
that posts requests and reads tokens), and georeport's GeoReport (XML, read
side). Run by tests/it/open311.rs; prints what it sent and got (the api_key
redacted), then one line `RESULT <json>`.

    python3 open311.py post BASE_URL API_KEY
    python3 open311.py closed BASE_URL SERVICE_REQUEST_ID
"""

import json
import sys
import time
import urllib.parse

import georeport
import requests
from civicbot.http import HttpError, HttpTransport, RateLimiter
from civicbot.open311 import Open311Client
from civicbot.registry import Endpoint


def show(text):
    print(text, flush=True)


class Logged(HttpTransport):
    """civicbot's own transport, printing each exchange."""

    def _open(self, req):
        body = req.data.decode() if req.data else ""
        if body:
            fields = urllib.parse.parse_qsl(body, keep_blank_values=True)
            body = urllib.parse.urlencode(
                [(k, "***" if k == "api_key" else v) for k, v in fields]
            )
        show(f"> {req.get_method()} {req.full_url}" + (f"\n>   {body}" if body else ""))
        try:
            raw = super()._open(req)
        except HttpError as error:
            show(f"< {error.status} {error.body}")
            raise
        show(f"< 200 {raw.decode()}")
        return raw


def client(base):
    endpoint = Endpoint(
        id="tongzhou", name="Tongzhou grid hub", base_url=base,
        write=True, api_key_required_for_write=True,
    )
    transport = Logged(timeout=10, rate_limiter=RateLimiter(min_interval=0))
    return Open311Client(endpoint, transport=transport, jurisdiction_id="tz.example")


def post(base, key):
    c = client(base)
    discovery = c.http.get_json(f"{base}/discovery.json")
    assert discovery["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    services = c.list_services()
    noise = next(s for s in services if s["service_code"] == "noise.construction")
    assert noise["metadata"] is True, noise
    definition = c.get_service_definition("noise.construction")
    assert definition["attributes"][0]["code"] == "night_work", definition

    form = dict(
        lat=39.8953, lng=116.6752, address_string="通州区玉桥中路18号工地",
        description="玉桥中路18号工地每天夜里11点以后还在打桩。\n联系我：13911112222",
        media_url="https://app.tz.example/media/8812.jpg",
        first_name="小明", last_name="王", email="wang.xm@example.com",
        phone="13911112222", device_id="device-a1b2", account_id="u-20931",
        attributes={"night_work": "yes"},
    )
    # A wrong key: 403 in Open311's error format.
    try:
        c.create_request("noise.construction", dry_run=False, confirm="SEND",
                         api_key="not-the-key-0000000000", **form)
        raise AssertionError("a wrong api_key was accepted")
    except HttpError as error:
        assert error.status == 403, error
        assert json.loads(error.body)[0]["code"] == 403
    # The definition's required attribute, checked by the client against
    # the definition it read (validate_remote) and by the hub.
    prepared = c.create_request("noise.construction", dry_run=False, confirm="SEND",
                                api_key=key, validate_remote=True, **form)
    token = prepared.response[0]["token"]

    service_request_id = None
    deadline = time.time() + 30
    while service_request_id is None:
        try:
            found = c.get_token(token)
            service_request_id = found[0]["service_request_id"]
            assert found[0]["token"] == token
        except HttpError as error:
            assert error.status == 404, error
            assert time.time() < deadline, "no service_request_id within 30 s"
            time.sleep(0.3)
    request = c.get_request(service_request_id)
    listed = c.list_requests(service_request_ids=[service_request_id])
    assert listed == [request], listed
    show("RESULT " + json.dumps({
        "token": token, "service_request_id": service_request_id,
        "request": request, "services": services, "definition": definition,
        "discovery": discovery,
    }, ensure_ascii=False))


def closed(base, service_request_id):
    c = client(base)
    open_now = c.list_requests(service_request_ids=[service_request_id])
    listed = c.list_requests(service_code="noise.construction", status="closed")
    assert [r["service_request_id"] for r in listed] == [service_request_id], listed
    assert c.list_requests(service_code="noise.construction", status="open") == []

    # georeport reads the same in XML (xmltodict).
    xml = georeport.GeoReport(base, jurisdiction="tz.example", output_format="xml")
    show(f"> GET {base}/services.xml (georeport)")
    services = xml.get_service_list()
    show(f"< {len(services)} services, first {json.dumps(services[0], ensure_ascii=False)}")
    show(f"> GET {base}/services/noise.construction.xml (georeport)")
    definition = xml.get_service_definition("noise.construction")
    show(f"< {json.dumps(definition, ensure_ascii=False)}")
    show(f"> GET {base}/requests/{service_request_id}.xml (georeport)")
    request = xml.get_service_request(service_request_id)
    show(f"< {json.dumps(request, ensure_ascii=False)}")
    errors = requests.get(f"{base}/requests/TZ0000000000000.xml")
    show(f"> GET {base}/requests/TZ0000000000000.xml\n< {errors.status_code} {errors.text.strip()}")
    show("RESULT " + json.dumps({
        "json": open_now[0], "xml_services": services, "xml_definition": definition,
        "xml_request": request, "xml_error": errors.text, "xml_error_status": errors.status_code,
    }, ensure_ascii=False))


if __name__ == "__main__":
    {"post": post, "closed": closed}[sys.argv[1]](*sys.argv[2:])
