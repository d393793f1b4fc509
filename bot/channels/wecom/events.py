"""WeCom callback XML: the envelope, the decrypted message, and what becomes an Inbound.

Every document is parsed with ``defusedxml`` (no entity expansion, no DTDs, no external
references): the envelope arrives before its signature is checked. A decrypted callback is
flattened to its top-level fields (``FromUserName``, ``MsgType``, ``Content``, ``MsgId``,
``Event``, ``EventKey``…) and turned into one :class:`~core.messages.Inbound`:

- a text message → its text (command words count without a slash, as in the console);
- a voice message with WeCom's speech recognition on → the recognised text;
- other messages (image, file, location…) → an empty text, which the runtime answers with
  what it can do;
- ``template_card_event`` (a button of a template card was pressed) → the button's key as the
  payload;
- ``click`` (an app menu item) → the item's key as a command word (``survey``, ``help``…), so
  the district can put pufa's commands in the app menu;
- ``subscribe`` (the app was made visible to somebody) → ``start``, the welcome;
- anything else (entering the app, location reports, contact changes…) → nothing.

Each Inbound carries an event id for the runtime's processed-event table: ``m<MsgId>`` for
messages; events have no MsgId, so ``e<hash>`` of sender, create time, event, key and task id.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from core.messages import Inbound

__all__ = [
    "CHANNEL",
    "MalformedXml",
    "event_id_of",
    "parse_envelope",
    "parse_message",
    "to_inbound",
    "update_button_xml",
]

CHANNEL = "wecom"
_MAX_FIELD = 4096


class MalformedXml(ValueError):
    """A body that is not the XML WeCom sends."""


def _parse(document: bytes | str) -> Element:
    try:
        root = fromstring(document)
    except (ParseError, DefusedXmlException, ValueError, UnicodeError) as exc:
        raise MalformedXml(str(exc) or type(exc).__name__) from exc
    if root.tag != "xml":
        raise MalformedXml("the root element is not <xml>")
    return root


def _fields(root: Element) -> dict[str, str]:
    return {child.tag: (child.text or "").strip() for child in root if len(child) == 0}


def parse_envelope(body: bytes) -> str:
    """The ``Encrypt`` field of a callback body."""
    encrypted = _fields(_parse(body)).get("Encrypt", "")
    if not encrypted:
        raise MalformedXml("no Encrypt field")
    return encrypted


def parse_message(document: str) -> dict[str, str]:
    """The top-level fields of a decrypted callback message."""
    fields = _fields(_parse(document))
    if not fields.get("FromUserName") or not fields.get("MsgType"):
        raise MalformedXml("no FromUserName or MsgType")
    if any(len(value) > _MAX_FIELD for value in fields.values()):
        raise MalformedXml("a field is too long")
    return fields


def event_id_of(fields: Mapping[str, str]) -> str:
    """The deduplication id of a callback: its MsgId, or a hash for events without one."""
    msg_id = fields.get("MsgId", "")
    if msg_id:
        return f"m{msg_id}"[:64]
    parts = [
        fields.get(name, "")
        for name in ("FromUserName", "CreateTime", "Event", "EventKey", "TaskId")
    ]
    return "e" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]


def to_inbound(fields: Mapping[str, str]) -> Inbound | None:
    """The Inbound of a decrypted callback, or ``None`` for events pufa does not answer."""
    user = fields["FromUserName"]
    kind = fields["MsgType"]
    text: str | None = None
    payload: str | None = None
    if kind == "text":
        text = fields.get("Content", "")
    elif kind == "voice":
        text = fields.get("Recognition", "")
    elif kind == "event":
        event = fields.get("Event", "")
        if event == "template_card_event":
            payload = fields.get("EventKey", "")
            if not payload:
                return None
        elif event == "click" and fields.get("EventKey"):
            text = fields["EventKey"]
        elif event == "subscribe":
            text = "start"
        else:
            return None
    else:
        text = ""
    return Inbound(
        channel=CHANNEL,
        external_id=user,
        chat_id=user,
        text=text,
        payload=payload,
        event_id=event_id_of(fields),
        bare_commands=True,
    )


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def update_button_xml(
    to_user: str, corp_id: str, replace_name: str, now: float | None = None
) -> str:
    """The passive reply that greys out the pressed template card's buttons, showing
    ``replace_name`` instead (sent encrypted)."""
    created = int(now if now is not None else time.time())
    return (
        "<xml>"
        f"<ToUserName>{_cdata(to_user)}</ToUserName>"
        f"<FromUserName>{_cdata(corp_id)}</FromUserName>"
        f"<CreateTime>{created}</CreateTime>"
        "<MsgType><![CDATA[update_button]]></MsgType>"
        f"<Button><ReplaceName>{_cdata(replace_name)}</ReplaceName></Button>"
        "</xml>"
    )
