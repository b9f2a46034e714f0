#!/usr/bin/env python3
"""Generate a small synthetic, labelled corpus of customer-support tickets.

The corpus is the embedded default dataset of ``make demo``: five classes
(billing, shipping, technical, account, returns), each with its own phrase
templates, mixed with a large pool of neutral filler sentences shared by all
classes.  Some tickets are deliberately ambiguous (they carry phrases of two
classes) and about 5% are mislabelled, so a TF-IDF + MLP model lands at a
realistic accuracy (roughly 0.85-0.95) instead of 1.0.

Output (CSV with header ``text,label``, written with the csv module, ``\\n``
line endings, quoting only where needed)::

    <out>/tickets_train.csv   (--train-rows, default 4000)
    <out>/tickets_test.csv    (--test-rows,  default 1000)

The output is byte-identical for the same ``--seed`` (stdlib ``random`` only,
string-seeded per split).  Run::

    python tools/gen_corpus.py                 # writes data/tickets_{train,test}.csv
    python tools/gen_corpus.py --seed 1 --out /tmp/tickets --train-rows 400 --test-rows 100
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import sys
from collections.abc import Callable, Sequence

LABELS: tuple[str, ...] = ("billing", "shipping", "technical", "account", "returns")

MIN_WORDS = 10
MAX_WORDS = 120
NOISE_RATE = 0.05  # text drawn from another class, label kept
EVEN_MIX_RATE = 0.03  # as many sentences of a second class as of its own
LIGHT_MIX_RATE = 0.10  # one stray sentence of a second class
LONG_RATE = 0.06  # share of long tickets (40 to MAX_WORDS words)

# --------------------------------------------------------------------------
# Slot values shared by the templates of every class.
# --------------------------------------------------------------------------
SLOTS: dict[str, Sequence[str]] = {
    "product": (
        "headphones",
        "blender",
        "desk lamp",
        "rain jacket",
        "coffee maker",
        "backpack",
        "smart watch",
        "office chair",
        "phone case",
        "toaster",
        "hiking boots",
        "keyboard",
        "wall clock",
        "yoga mat",
        "speaker",
        "water bottle",
        "winter coat",
        "camera bag",
        "air purifier",
        "kettle",
    ),
    "device": (
        "phone",
        "laptop",
        "tablet",
        "work computer",
        "smart TV",
        "old desktop",
        "new phone",
        "home computer",
    ),
    "browser": ("Firefox", "Chrome", "Safari", "Edge", "the built-in browser"),
    "carrier": ("ParcelGo", "QuickShip", "Rapid Post", "BlueBox Freight", "Swift Courier"),
    "city": (
        "Springfield",
        "Riverton",
        "Lakeside",
        "Maple Grove",
        "Fairview",
        "Oakdale",
        "Harbor City",
        "Greenville",
        "Brookfield",
        "Westport",
    ),
    "name": (
        "Anna",
        "Ben",
        "Carla",
        "David",
        "Elena",
        "Frank",
        "Grace",
        "Hugo",
        "Irene",
        "Jamal",
        "Kate",
        "Luis",
        "Maya",
        "Nora",
        "Omar",
        "Priya",
    ),
    "date": (
        "Monday",
        "Tuesday",
        "Friday",
        "Saturday",
        "March 3",
        "April 12",
        "May 27",
        "June 9",
        "October 2",
        "the 14th",
    ),
    "errmsg": (
        "something went wrong",
        "unexpected error, please try again",
        "connection timed out",
        "access denied",
        "service unavailable",
    ),
    "code": ("SPRING10", "WELCOME5", "SAVE20", "FREESHIP", "LOYAL15"),
    "ordinal": ("second", "third", "fourth"),
    "years": ("two", "three", "five", "ten", "several"),
    "days": ("five", "seven", "ten", "twelve", "fifteen"),
}

# --------------------------------------------------------------------------
# Class-specific sentence templates.  {amount}, {amount2}, {order}, {error}
# are generated; other {slots} come from SLOTS.
# --------------------------------------------------------------------------
CLASS_TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged {amount} twice for the same purchase.",
        "My credit card was billed {amount}, but the invoice says {amount2}.",
        "Why is there an extra charge of {amount} on my card statement?",
        "I need a copy of the invoice for order {order}, for my accountant.",
        'The payment failed with "card declined", but my bank says the card is fine.',
        "Please cancel the automatic renewal, I don't want to be billed again.",
        "I upgraded my plan on {date} and paid the full price instead of the prorated amount.",
        "Can you explain the tax line on my last invoice?",
        "I entered the discount code {code}, but the total on the bill didn't change.",
        "My subscription fee went up from {amount} to {amount2} without any notice.",
        "Please reverse the duplicate payment, I only authorized one charge.",
        "The billing address printed on my invoice is wrong.",
        "I paid by bank transfer on {date}, but the payment still shows as pending.",
        "You keep charging my old credit card, even though I updated the payment method.",
        "Is it possible to switch to annual billing to save some money?",
        "The receipt shows a currency conversion fee I didn't expect.",
        "I was overcharged: the price at checkout was {amount}, but I was billed {amount2}.",
        'My trial was supposed to be "completely free", so why was I charged {amount}?',
        "Please send a VAT invoice to our finance team.",
        "The credit of {amount} you promised never appeared in my account balance.",
        "My monthly statement lists a subscription I never signed up for.",
        "The pricing page says {amount} per month, but my card was debited {amount2}.",
        "Can I pay the outstanding balance in installments?",
        "Your invoice {order} has the wrong company name and tax number.",
    ),
    "shipping": (
        "My order {order} still hasn't arrived, it's been {days} days.",
        'The tracking number doesn\'t work, the {carrier} site says "no information available".',
        "The package was marked as delivered, but I never received it.",
        "Can I change the delivery address for order {order}?",
        "The courier left the parcel outside my door in the rain.",
        "How long does express delivery take to {city}?",
        "My parcel has been stuck in transit at the {city} depot since {date}.",
        "Only half of my shipment arrived, the {product} is missing from the box.",
        "Do you ship internationally, and who pays the customs fees?",
        "The delivery window was {date}, but the driver never showed up.",
        "The box arrived crushed, and the {product} inside got scratched in transit.",
        "Can I pick up my order at a local store instead of waiting for delivery?",
        "The shipping label was created, but {carrier} never collected the parcel.",
        "Why does shipping to {city} cost more than the {product} itself?",
        'The driver marked it "address not found", but my street address is correct.',
        "Please hold my shipment at the depot, I'm away until {date}.",
        "My order shipped to my old address in {city}.",
        "The estimated delivery date keeps moving, first {date}, now next week.",
        "Tracking shows the parcel went back to the sender. Why?",
        "I paid for next-day delivery, and the package took a whole week.",
        "The courier asked me to pay a delivery fee at the door.",
        "Can you split my order into two deliveries?",
        "The {carrier} driver left my package with a neighbor I don't know.",
    ),
    "technical": (
        "The app crashes every time I open the settings page.",
        "I get error {error} whenever I try to upload a file.",
        "The website won't load in {browser}, it just shows a blank white page.",
        "After the latest update, my {device} can't sync anymore.",
        'The screen freezes and then shows "{errmsg}".',
        "Push notifications stopped working on my {device}.",
        "The {product} won't connect to wifi, and I already restarted the router.",
        "The export button does nothing, no file is ever downloaded.",
        "The search results are empty, even though the item definitely exists.",
        "The firmware update failed halfway, and now the {product} won't turn on.",
        "Videos buffer forever, even on a fast connection.",
        "The API has returned error {error} for every request since {date}.",
        "The battery on my {device} drains in two hours since the update.",
        "Bluetooth pairing with my {device} fails with code {error}.",
        "The page keeps reloading, and I can't click any button.",
        "Dark mode makes the text unreadable on my {device}.",
        'The installer says "missing component" and quits.',
        "The audio cuts out every few minutes during calls.",
        "The dashboard charts show no data after the software upgrade.",
        "The app uses all the memory and my {device} gets very slow.",
        "Clicking the save button throws a script error in {browser}.",
        "The barcode scanner in the app doesn't recognize anything.",
        "The desktop client can't reach the server, it times out after a minute.",
    ),
    "account": (
        "I can't log in, it says my password is incorrect even after resetting it.",
        "I never received the password reset email.",
        "Please change the email address on my profile to my new one.",
        "My account was locked after too many login attempts.",
        "How do I turn on two-factor authentication?",
        "I think someone else got into my account, I see logins from {city}.",
        "Please delete my account and all of my personal data.",
        "I want to merge my two accounts into a single profile.",
        "The verification code never arrives by text message.",
        "I can't update my phone number in the profile settings.",
        "My username was changed without my permission.",
        "How can I add a family member to my account?",
        'The sign-up form says "email already in use", but I never registered.',
        "I lost access to my old email, how can I recover my account?",
        "Please unlock my profile, I already verified my identity.",
        "I'd like to change my display name and profile picture.",
        "The security questions don't accept my answers anymore.",
        "I keep getting logged out every few minutes.",
        "How do I remove an old device from the list of trusted sessions?",
        "My account shows another person's name and address.",
        "Can I transfer my membership to my partner's account?",
        "The login link in the welcome email has expired.",
        "I'd like to download a copy of all the data in my profile.",
    ),
    "returns": (
        "I'd like to return the {product}, it doesn't fit.",
        "How do I get a return label for order {order}?",
        "I sent the {product} back on {date}, when will the return be processed?",
        "The {product} I received is the wrong color, I want to exchange it.",
        "Is the {product} still within the return window? I bought it on {date}.",
        'The returns portal says "item not eligible", but it\'s unused and unopened.',
        "Can I exchange the {product} for a larger size?",
        "I dropped off the return at the {carrier} office, here is the drop-off receipt.",
        "The refund for my returned {product} was less than what I paid.",
        "The {product} arrived broken, I'd like a replacement.",
        "Do I have to pay the postage to send a return back?",
        "I changed my mind about the {product}, can I send it back?",
        "Your warehouse received my return two weeks ago, but the status hasn't changed.",
        "The {product} stopped working after a week, can I return it under warranty?",
        "I'd prefer store credit instead of a refund for the returned items.",
        "I threw away the original packaging, can I still return the {product}?",
        "The replacement {product} has the same defect as the first one.",
        "Can I return a gift without the receipt?",
        "I returned two items but only one appears on the return confirmation.",
        "Please arrange a pickup for the return, the {product} is too heavy to carry.",
        "The exchange you sent me is the same wrong size again.",
        "What is your return policy for items bought on sale?",
    ),
}

# --------------------------------------------------------------------------
# Neutral material shared by all classes.
# --------------------------------------------------------------------------
GREETINGS: tuple[str, ...] = (
    "Hi,",
    "Hello,",
    "Hello team,",
    "Hi there,",
    "Good morning,",
    "Good afternoon,",
    "Dear support,",
    "Hey,",
    "To whom it may concern,",
    "Hi support team,",
)
CLOSINGS: tuple[str, ...] = (
    "Thanks.",
    "Thank you!",
    "Thanks in advance.",
    "Best regards, {name}.",
    "Cheers, {name}",
    "Kind regards.",
    "Please help, this is urgent!",
    "Looking forward to your reply.",
    "Thanks, {name}",
    "Have a nice day.",
)
FILLER_SENTENCES: tuple[str, ...] = (
    "I have been a customer for {years} years.",
    "This is the {ordinal} time I am writing about this.",
    "I hope you can help me with this.",
    "I tried calling, but the wait time was too long.",
    "Please get back to me as soon as possible.",
    "I'm usually very happy with your service.",
    "Let me know if you need any more details.",
    "My reference number is {order}, in case you need it.",
    "I already checked the help center, but couldn't find an answer.",
    "I'm writing from my work email, please reply here.",
    "Honestly, this is pretty frustrating.",
    "Thanks for your patience.",
    "I attached a screenshot, in case that helps.",
    "I spoke to {name} in the chat yesterday, but the issue is still open.",
    "This happened on {date}.",
    "It's not urgent, but I'd appreciate a quick answer.",
    "My friend recommended you, so I'm a bit disappointed.",
    "I'm not sure if this is the right department.",
    "Could you please look into it?",
    "I would appreciate an update by the end of the week.",
    "I've read the FAQ twice.",
    "My name is {name}, and I live in {city}.",
    'Your colleague said "it will be sorted out soon", but nothing happened.',
    "Sorry for the long message.",
    "I don't usually complain, but here we are.",
    "Please reply by email, I can't take calls at work.",
    "I'm travelling next week, so a fast answer would help.",
    "English is not my first language, sorry for any mistakes.",
    "I'll wait for your answer before doing anything else.",
    "Is there a phone number I can call instead?",
    "Your chatbot didn't understand my question.",
    "Everything else has been fine so far.",
    "I've attached all the information I have.",
    "Just to be clear, I did nothing unusual.",
    "Can someone from your team confirm they got this?",
)
CHAT_SUBJECTS: tuple[str, ...] = (
    "My neighbor",
    "My colleague",
    "My sister",
    "The kids",
    "Our whole team",
    "My husband",
    "My wife",
    "A friend of mine",
    "My manager",
    "Everyone at home",
    "My roommate",
    "My dad",
)
CHAT_VERBS: tuple[str, ...] = (
    "noticed",
    "mentioned",
    "asked about",
    "was curious about",
    "talked about",
    "liked",
    "laughed at",
    "read about",
    "forwarded me",
    "saw",
)
CHAT_OBJECTS: tuple[str, ...] = (
    "the new catalog",
    "the weekend sale",
    "your newsletter",
    "the holiday hours",
    "your mobile store",
    "the loyalty program",
    "the spring collection",
    "your blog post",
    "the gift cards",
    "the store opening downtown",
    "the customer survey",
    "the birthday coupon",
)
CHAT_TIMES: tuple[str, ...] = (
    "last week",
    "this morning",
    "yesterday evening",
    "a few days ago",
    "over the weekend",
    "earlier today",
    "last month",
    "on the train",
)
VAGUE_SENTENCES: tuple[str, ...] = (
    "Something is wrong with my order.",
    "I have a problem and need help.",
    "It still doesn't work.",
    "Nothing has changed since my last message.",
    "Can you check what happened?",
    "I'm not happy with how this was handled.",
)


class TicketGenerator:
    """Makes ticket texts for a class, driven by one seeded ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        """Keep the random source; all randomness goes through it."""
        self.rng = rng

    def _slot(self, name: str) -> str:
        """Return a random value for the template slot ``name``."""
        rng = self.rng
        if name in ("amount", "amount2"):
            return f"${rng.randint(5, 400)}.{rng.choice(('00', '49', '95', '99'))}"
        if name == "order":
            return f"#{rng.randint(100000, 999999)}"
        if name == "error":
            return f"E-{rng.randint(100, 9999)}"
        return rng.choice(SLOTS[name])

    def fill(self, template: str) -> str:
        """Substitute every ``{slot}`` of ``template`` with a random value."""
        names = [part.split("}", 1)[0] for part in template.split("{")[1:]]
        return template.format(**{n: self._slot(n) for n in names})

    def core(self, label: str) -> str:
        """Return one class-specific sentence for ``label``."""
        return self.fill(self.rng.choice(CLASS_TEMPLATES[label]))

    def filler(self) -> str:
        """Return one neutral sentence shared by all classes."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.55:
            return self.fill(rng.choice(FILLER_SENTENCES))
        if roll < 0.9:
            parts = (
                rng.choice(CHAT_SUBJECTS),
                rng.choice(CHAT_VERBS),
                rng.choice(CHAT_OBJECTS),
                rng.choice(CHAT_TIMES),
            )
            return " ".join(parts) + "."
        return rng.choice(VAGUE_SENTENCES)

    def target_length(self) -> int:
        """Draw a ticket length in words: mostly short, a long tail up to MAX_WORDS."""
        if self.rng.random() < LONG_RATE:
            return self.rng.randint(40, MAX_WORDS)
        return min(MIN_WORDS + int(self.rng.expovariate(1.0 / 5.0)), MAX_WORDS)

    def ticket(self, label: str) -> str:
        """Build one ticket whose dominant topic is ``label``."""
        rng = self.rng
        topic = label
        if rng.random() < NOISE_RATE:  # label noise: text of another class
            topic = rng.choice([c for c in LABELS if c != label])
        other = rng.choice([c for c in LABELS if c != topic])
        n_core = 1 if rng.random() < 0.75 else 2
        sentences = [self.core(topic) for _ in range(n_core)]
        roll = rng.random()
        if roll < EVEN_MIX_RATE:
            sentences += [self.core(other) for _ in range(n_core)]
        elif roll < EVEN_MIX_RATE + LIGHT_MIX_RATE:
            sentences.append(self.core(other))
        return self._assemble(sentences)

    def _assemble(self, sentences: list[str]) -> str:
        """Pad ``sentences`` with filler to a drawn length, shuffle, add greeting/closing."""
        rng = self.rng
        target = self.target_length()
        body = list(sentences)
        while _words(body) < target:
            body.append(self.filler())
        rng.shuffle(body)
        if rng.random() < 0.5:
            body.insert(0, rng.choice(GREETINGS))
        if rng.random() < 0.5:
            body.append(self.fill(rng.choice(CLOSINGS)))
        words = " ".join(body).split()
        if len(words) > MAX_WORDS:
            words = words[:MAX_WORDS]
        while len(words) < MIN_WORDS:
            words += self.filler().split()
        return " ".join(words)


def _words(sentences: Sequence[str]) -> int:
    """Count whitespace-separated words over ``sentences``."""
    return sum(len(s.split()) for s in sentences)


def balanced_labels(n_rows: int, rng: random.Random) -> list[str]:
    """Return ``n_rows`` labels, as even over LABELS as possible, in random order."""
    labels = [LABELS[i % len(LABELS)] for i in range(n_rows)]
    rng.shuffle(labels)
    return labels


def generate_rows(n_rows: int, seed: int, split: str) -> list[tuple[str, str]]:
    """Return ``n_rows`` ``(text, label)`` pairs for ``split``, deterministic in ``seed``."""
    rng = random.Random(f"streamtrain-tickets/{seed}/{split}")
    gen = TicketGenerator(rng)
    return [(gen.ticket(label), label) for label in balanced_labels(n_rows, rng)]


def rows_to_csv(rows: Sequence[tuple[str, str]]) -> str:
    """Render rows as CSV text with a ``text,label`` header and ``\\n`` line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("text", "label"))
    writer.writerows(rows)
    return buf.getvalue()


def write_csv(path: str, rows: Sequence[tuple[str, str]]) -> int:
    """Write ``rows`` to ``path`` as UTF-8 CSV; return the number of bytes written."""
    data = rows_to_csv(rows).encode("utf-8")
    with open(path, "wb") as fh:
        fh.write(data)
    return len(data)


def _positive_int(value: str) -> int:
    """argparse type: an integer >= 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", default="data", help="output directory (default data)")
    parser.add_argument("--train-rows", type=_positive_int, default=4000)
    parser.add_argument("--test-rows", type=_positive_int, default=1000)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> int:
    """Generate both splits into ``--out``; return the process exit code."""
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for split, n_rows in (("train", args.train_rows), ("test", args.test_rows)):
        path = os.path.join(args.out, f"tickets_{split}.csv")
        n_bytes = write_csv(path, generate_rows(n_rows, args.seed, split))
        log(f"gen_corpus: wrote {path}: {n_rows} rows, {n_bytes} bytes (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
