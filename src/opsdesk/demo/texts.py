"""The words of the demo company: names, companies, and ticket scenarios written as templates.

Every text is made here from templates with variation; nothing is read from outside. A
:class:`Scenario` is one kind of customer problem with its subjects, the customer's details, the
agent's answers, the customer's follow-ups and internal notes; ``{slots}`` are filled from
:data:`VOCABULARY`. Pure data and string work, no I/O.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

PRODUCT = "Brightline"
STAFF_DOMAIN = "brightline.example"

FIRST_NAMES = (
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Mateo",
    "Sofia",
    "Lucas",
    "Mia",
    "Elijah",
    "Amelia",
    "Ethan",
    "Harper",
    "Leo",
    "Chloe",
    "Arjun",
    "Priya",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Fatima",
    "Omar",
    "Aisha",
    "Kwame",
    "Amara",
    "Lars",
    "Ingrid",
    "Jonas",
    "Clara",
    "Pierre",
    "Camille",
    "Giulia",
    "Marco",
    "Ana",
    "João",
    "Diego",
    "Valentina",
    "Carlos",
    "Lucía",
    "Sven",
    "Freya",
    "Tomasz",
    "Zofia",
    "Dmitri",
    "Elena",
    "Nina",
    "Jamal",
    "Grace",
    "Daniel",
    "Rachel",
    "Samuel",
    "Hannah",
    "David",
    "Sarah",
    "Michael",
    "Laura",
    "Ben",
    "Julia",
    "Isaac",
    "Rosa",
    "Tariq",
)
LAST_NAMES = (
    "Smith",
    "Johnson",
    "Garcia",
    "Martinez",
    "Chen",
    "Wang",
    "Kim",
    "Nguyen",
    "Patel",
    "Singh",
    "Müller",
    "Schmidt",
    "Rossi",
    "Bianchi",
    "Dubois",
    "Laurent",
    "Silva",
    "Santos",
    "Kowalski",
    "Nowak",
    "Johansson",
    "Andersen",
    "O'Brien",
    "Murphy",
    "Okafor",
    "Mensah",
    "Haddad",
    "Khan",
    "Tanaka",
    "Suzuki",
    "Ivanova",
    "Petrov",
    "Cohen",
    "Levi",
    "Walker",
    "Brown",
    "Taylor",
    "Lee",
    "Hughes",
    "Fischer",
    "Novak",
    "Costa",
    "Ferreira",
    "Moreau",
    "Lindqvist",
    "Berg",
    "Reyes",
)
COMPANY_FIRST = (
    "Blue",
    "North",
    "Silver",
    "Red",
    "Bright",
    "Clear",
    "Iron",
    "Green",
    "Swift",
    "Summit",
    "Harbor",
    "Cedar",
    "Granite",
    "Maple",
    "Falcon",
    "Atlas",
    "Pioneer",
    "Crescent",
    "Evergreen",
    "Sterling",
    "Lumen",
    "Orbit",
    "Beacon",
    "Coastal",
    "Prairie",
    "Alder",
    "Copper",
    "Willow",
    "Nimbus",
    "Vertex",
)
COMPANY_SECOND = (
    "peak",
    "field",
    "stone",
    "bridge",
    "wave",
    "line",
    "works",
    "point",
    "gate",
    "light",
    "forge",
    "path",
    "ridge",
    "brook",
    "river",
    "craft",
    "leaf",
    "sky",
    "wood",
    "star",
)
COMPANY_KIND = (
    "Logistics",
    "Health",
    "Studios",
    "Consulting",
    "Labs",
    "Architects",
    "Legal",
    "Media",
    "Foods",
    "Robotics",
    "Energy",
    "Dental",
    "Marketing",
    "Engineering",
    "Retail",
    "Analytics",
    "Design",
    "Construction",
    "Travel",
    "Education",
)
CONSUMER_DOMAINS = ("inbox.example", "webmail.example", "post.example", "homemail.example")
LANGUAGES = (("en", 0.78), ("es", 0.07), ("de", 0.06), ("fr", 0.05), ("pt", 0.04))
TIME_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Madrid",
    "America/Sao_Paulo",
    "Asia/Singapore",
    "Australia/Sydney",
)

VOCABULARY: dict[str, tuple[str, ...]] = {
    "plan": ("Starter", "Pro", "Business"),
    "lower_plan": ("Starter", "Free"),
    "month": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "amount": ("$49.00", "$120.00", "$348.00", "$96.50", "$1,250.00", "$29.00", "$612.00", "$2,400.00"),
    "invoice": ("INV-20418", "INV-20977", "INV-21530", "INV-22104", "INV-22861", "INV-23390"),
    "integration": (
        "Slack",
        "Google Calendar",
        "Salesforce",
        "QuickBooks",
        "Xero",
        "Zapier",
        "Jira",
        "HubSpot",
        "Microsoft Teams",
    ),
    "browser": ("Chrome 131", "Safari 18", "Firefox 133", "Edge 131"),
    "device": ("iPhone 15", "Pixel 8", "Galaxy S24", "iPad Air", "MacBook"),
    "feature": (
        "recurring invoices",
        "project budgets",
        "time-off tracking",
        "custom report columns",
        "approval workflows",
        "a dark mode",
        "multi-currency invoices",
        "bulk time edits",
        "client portals",
        "Gantt charts",
    ),
    "report": (
        "the utilization report",
        "the project profitability report",
        "the weekly timesheet export",
        "the billable hours dashboard",
        "the expense summary",
    ),
    "area": ("Dashboards", "Reports", "Time tracking", "Invoicing", "Integrations", "Mobile app", "API"),
    "seats": ("5", "12", "25", "40", "80", "150"),
    "error": (
        "500 Internal Server Error",
        '"Something went wrong (E-4031)"',
        "a blank white page",
        '"Session expired" right after logging in',
        "a spinner that never stops",
        '"Rate limit exceeded" (HTTP 429)',
    ),
    "idp": ("Okta", "Azure AD", "Google Workspace", "OneLogin"),
    "export": ("CSV", "Excel", "PDF"),
    "days": ("two days", "a week", "since Monday", "three days", "since the last update"),
}

OPENERS = ("Hi,", "Hello,", "Hi there,", "Hello support team,", "Good morning,", "Hey,", "Dear support,")
CUSTOMER_CLOSERS = ("Thanks,", "Thank you,", "Best,", "Regards,", "Cheers,", "Many thanks,", "Best regards,")
AGENT_CLOSERS = ("Best,", "Kind regards,", "Thanks,", "All the best,", "Cheers,")
THANKS_FOLLOW_UPS = (
    "That worked, thank you!",
    "Perfect, all sorted now. Thanks for the quick help.",
    "Great, thanks a lot.",
    "Confirmed, it looks right now.",
    "Thanks, that answers my question.",
)
REOPEN_FOLLOW_UPS = (
    "Sorry, this is happening again today.",
    "I spoke too soon, the problem is back.",
    "It worked for a day but now I see the same thing again.",
    "One more question on this: does the change apply to all of our workspaces?",
)
SATISFACTION_COMMENTS = {
    5: ("Fast and friendly, thank you!", "Solved in minutes.", "Great support as always.", ""),
    4: ("Good help, took a bit long.", "Thanks, all good.", ""),
    3: ("Fixed, but I had to explain it twice.", ""),
    2: ("Took days to get an answer.", "The first answer did not help."),
    1: ("Still not fixed properly.", "Nobody read my message.", "Very slow."),
}


@dataclass(frozen=True, slots=True)
class Scenario:
    category: str
    type: str
    weight: float
    subjects: tuple[str, ...]
    details: tuple[str, ...]
    replies: tuple[str, ...]
    follow_ups: tuple[str, ...]
    notes: tuple[str, ...]
    tags: tuple[str, ...]
    area: str | None = None
    on_hold_likely: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "billing",
        "question",
        7.0,
        (
            "Charged twice for the {month} invoice",
            "Double charge on our card",
            "Duplicate payment for {invoice}",
        ),
        (
            "Our card was charged {amount} twice for {invoice}. Can you refund the duplicate?",
            "I see two identical charges of {amount} on our statement for {month}. We only have one workspace.",
        ),
        (
            "I checked our payment records and you are right: {invoice} was captured twice. I've refunded the "
            "duplicate {amount}; it will show on your statement within 5-10 business days.",
            "Thanks for flagging this. The second charge was an authorization that our payment provider "
            "released today, so no money was taken twice. You should see it disappear in 1-3 days.",
        ),
        ("Could you send me the refund receipt for our accounting?", "Thanks. When exactly will it show up?"),
        (
            "Stripe shows two captures for {invoice}; refunded the second one.",
            "Retry logic fired after a timeout. Linked to the known billing incident.",
        ),
        ("billing", "refund"),
        "Invoicing",
    ),
    Scenario(
        "billing",
        "question",
        5.0,
        (
            "Why did our bill go up this month?",
            "Unexpected amount on {invoice}",
            "Invoice {invoice} looks wrong",
        ),
        (
            "Our {month} invoice is {amount}, which is more than usual. Nothing changed on our side as far as I know.",
            "We were billed for {seats} seats but we only have a handful of active users.",
        ),
        (
            "The increase comes from seats added on the 14th: you went from 8 to {seats} users, and the prorated "
            "difference was added to this invoice. You can see it line by line under Settings > Billing > Invoices.",
            "I looked at {invoice}: it includes the annual price change we announced in our email two months "
            "ago. I've applied a one-time credit for the difference as a courtesy.",
        ),
        (
            "Can you remove the inactive users so this does not happen again?",
            "I did not get that email. Where was it announced?",
        ),
        (
            "Seat count went up via SCIM sync; customer unaware.",
            "Applied courtesy credit, approved by billing lead.",
        ),
        ("billing", "invoice"),
        "Invoicing",
    ),
    Scenario(
        "billing",
        "task",
        4.0,
        ("Update the card on file", "Payment failed but the card is valid", "Change billing email"),
        (
            "Our payment for {month} failed and we got a warning email. The card works everywhere else.",
            "Please update our billing contact to the finance team address; the current one left the company.",
        ),
        (
            "I've retried the payment and it went through this time; the failure was a 3-D Secure challenge that "
            "expired. Nothing else is needed from you.",
            "Done: the billing email is updated and future invoices will go to the new address.",
        ),
        ("Great. Will the workspace stay active?",),
        ("Card declined with authentication_required; retried successfully.",),
        ("billing", "payment_failed"),
        "Invoicing",
    ),
    Scenario(
        "billing",
        "task",
        3.0,
        ("Need a VAT number on our invoices", "Tax exemption certificate", "Invoice needs our PO number"),
        (
            "Our finance team needs the VAT ID and the PO number printed on every invoice from now on.",
            "We are a tax-exempt nonprofit. Where can I upload our exemption certificate?",
        ),
        (
            "I've added your VAT ID and PO number to the account, and reissued {invoice} with them printed on it.",
            "You can reply with the certificate attached and I'll apply the exemption to future invoices.",
        ),
        ("Could you also reissue the {month} invoice?",),
        ("Reissued invoice with tax details.",),
        ("billing", "tax"),
        "Invoicing",
    ),
    Scenario(
        "account",
        "question",
        6.0,
        (
            "Can't log in after resetting my password",
            "Locked out of my account",
            "Password reset email never arrives",
        ),
        (
            "I reset my password twice but I keep getting {error} when I try to log in with {browser}.",
            "The password reset email never arrives. I checked spam. It has been {days}.",
        ),
        (
            "Your account was temporarily locked after several failed attempts. I've unlocked it; please try the "
            "reset link again and use a private window in case an old session is cached.",
            "Our email provider had bounced your address after a full mailbox. I've cleared the bounce and sent "
            "a fresh reset link.",
        ),
        ("Still getting the same error, even in a private window.", "It worked, thanks!"),
        ("Account lockout after 10 attempts; unlocked.", "Address was on the suppression list."),
        ("login", "password"),
    ),
    Scenario(
        "account",
        "task",
        5.0,
        (
            "Transfer workspace ownership",
            "Remove a former employee",
            "Merge two workspaces",
            "Change the account owner to {first_name_alt}",
        ),
        (
            "Our admin left the company. Please transfer ownership of the workspace to me.",
            "We have two workspaces by accident and would like to merge them before the renewal.",
        ),
        (
            "I've verified the request with your billing contact and transferred ownership to you. You now see "
            "the Admin menu in Settings.",
            "Merging is possible: I'll move the projects and time entries from the second workspace; it takes "
            "about an hour and I'll confirm when it is done.",
        ),
        ("Do the other users need to do anything?", "Please go ahead."),
        ("Verified with the billing contact by phone.", "Workspace merge scheduled for tonight."),
        ("account", "ownership"),
    ),
    Scenario(
        "account",
        "question",
        3.0,
        ("Set up SSO with {idp}", "SAML login fails with {idp}", "SCIM provisioning not creating users"),
        (
            "We are rolling out {idp} SSO. The SAML assertion seems to be rejected and users see {error}.",
            "SCIM provisioning from {idp} stopped creating users {days}.",
        ),
        (
            "The certificate in your {idp} app changed on the 3rd. Please upload the new one under "
            "Settings > Security > SSO, and the login will work again.",
            "The SCIM token you use was revoked when the previous admin left. Generate a new one in Settings and "
            "update it in {idp}.",
        ),
        ("Uploaded the new certificate, still failing for some users.",),
        ("Customer uses IdP-initiated flow; clock skew of 4 minutes seen in logs.",),
        ("sso", "security"),
        "Integrations",
    ),
    Scenario(
        "technical",
        "incident",
        6.0,
        ("{report} will not load", "Dashboard stuck loading", "Reports are very slow today"),
        (
            "When I open {report} I get {error}. It used to load in a few seconds.",
            "The Dashboards page shows {error} for everyone on our team since this morning.",
        ),
        (
            "Thanks for the details. Large date ranges were timing out; I've asked engineering to increase the "
            "limit for your workspace and the report loads again. Narrowing the range also helps.",
            "We had a short slowdown in the reporting service this morning; it has been fixed. Please reload and "
            "let me know if anything still looks wrong.",
        ),
        ("It loads now but the totals look off for last week.", "Still slow for me."),
        (
            "Query timeouts on the reporting replica; engineering ticket REP-1182.",
            "Reproduced with a 24-month range; works with 12 months.",
        ),
        ("reports", "performance"),
        "Reports",
    ),
    Scenario(
        "technical",
        "incident",
        5.0,
        (
            "{integration} integration stopped syncing",
            "{integration} sync error",
            "Time entries missing in {integration}",
        ),
        (
            'Since {days}, entries are not syncing to {integration}. The integration page says "connected".',
            "The {integration} sync fails with {error}. We rely on it for payroll.",
        ),
        (
            "The authorization with {integration} had expired. Please reconnect it under Settings > Integrations; "
            "the missing entries will sync within 15 minutes.",
            "We found a bug in how {integration} sync handles archived projects; a fix is going out today, and "
            "I'll resync your data once it is live.",
        ),
        ("Reconnected, but only some entries came through.", "Any update on the fix?"),
        ("OAuth refresh token invalid; customer must reconnect.", "Bug ENG-4410 filed with repro steps."),
        ("integrations", "sync"),
        "Integrations",
        True,
    ),
    Scenario(
        "technical",
        "question",
        4.0,
        ("API returns 429 errors", "Webhooks are delayed", "API token stopped working"),
        (
            'Our nightly job against your API now gets "Rate limit exceeded" (HTTP 429) after a few hundred calls.',
            "Webhooks for new time entries arrive 20-30 minutes late since {days}.",
        ),
        (
            "The limit is 100 requests per minute per token. The Retry-After header tells you how long to wait; "
            "batching the calls with the bulk endpoint will keep you well under it.",
            "Webhook delivery was delayed by a queue backlog which is cleared now. Deliveries are back to a few "
            "seconds.",
        ),
        ("Could you raise the limit for our account?", "We still see some late deliveries."),
        ("Customer polls every project separately; suggested the bulk endpoint.",),
        ("api", "webhooks"),
        "API",
    ),
    Scenario(
        "technical",
        "incident",
        3.0,
        ("Mobile app crashes on start", "Can't log in on the {device}", "Timer does not sync from the app"),
        (
            "The app on my {device} crashes right after the splash screen since the last update.",
            "Time I track on my {device} never shows up on the web.",
        ),
        (
            "Thanks for the report. Version 5.12.1, out today, fixes the crash on start; please update from the "
            "store.",
            "Offline entries were stuck because of a full local cache. Logging out and in again sends them up.",
        ),
        ("Updated, works now.", "Logged out and in, still missing two entries."),
        ("Crash fixed in 5.12.1.",),
        ("mobile",),
        "Mobile app",
    ),
    Scenario(
        "bug",
        "problem",
        5.0,
        ("Totals in {report} are wrong", "Rounding error on invoices", "Duplicate time entries after import"),
        (
            "The totals in {report} do not match the sum of the entries: we are off by about 2 hours.",
            "Invoices round each line and then the total, so the total is a few cents off the sum of lines.",
        ),
        (
            "You are right, and I could reproduce it: entries crossing midnight are counted twice in that report. "
            "I've filed it with engineering as a bug and will update you when the fix ships.",
            "Thanks for the detailed example. This is a known bug; engineering has a fix scheduled for next "
            "week's release. I'll let you know when it is out.",
        ),
        ("Any news on this?", "Is there a workaround until then?"),
        ("Reproduced; bug ENG-4521 (midnight split).", "Customer impact: invoices sent with wrong totals."),
        ("bug",),
        "Reports",
        True,
    ),
    Scenario(
        "bug",
        "problem",
        3.0,
        (
            "Export to {export} is missing columns",
            "Time zone wrong on entries",
            "Approvals page shows an error",
        ),
        (
            "When I export to {export}, the client and project columns are empty.",
            "All entries show one hour later than they were tracked since the clock change.",
        ),
        (
            "Confirmed: the {export} export drops columns for archived clients. Engineering is fixing it; until "
            "then, unarchive the client before exporting.",
            "The workspace time zone was reset to UTC by an import. I've set it back to yours and the entries "
            "display correctly again.",
        ),
        ("The workaround is fine for now.",),
        ("Regression from last Tuesday's release.",),
        ("bug", "export"),
        "Reports",
    ),
    Scenario(
        "how_to",
        "question",
        8.0,
        (
            "How do I set up recurring invoices?",
            "How to add a client to a project",
            "How do I export timesheets?",
            "Where do I change the week start?",
            "How do I invite my team?",
        ),
        (
            "I'm new to {product} and can't find where to do this. Is there a guide?",
            "We just moved from spreadsheets. What is the easiest way to get started with this?",
        ),
        (
            "Great question! Go to Projects, open the project, and use the Clients tab. Here is our step-by-step "
            "guide in the help center: Getting started > Projects and clients.",
            "You can do it under Settings > Workspace. I've also attached a short video that walks through it. "
            "Let me know if anything is unclear.",
        ),
        ("Found it, thank you!", "And can I do the same for existing projects?"),
        ("Pointed to help center article; candidate for a macro.",),
        ("how_to",),
        "Time tracking",
    ),
    Scenario(
        "how_to",
        "question",
        4.0,
        ("Can I track time offline?", "How do budgets work?", "Set billable rates per person"),
        (
            "Does {product} support this? We have {seats} people and need it before the end of the month.",
            "I read the docs but I'm still confused about how this works with {integration}.",
        ),
        (
            "Yes: each member can have their own billable rate under Team > Rates, and project rates override "
            "them. Reports use the rate that was in force when the time was tracked.",
            "Budgets can be hours or money per project; you get an email at 80% and 100%. {integration} entries "
            "count toward them once synced.",
        ),
        ("Perfect, that's what we need.",),
        (),
        ("how_to", "onboarding"),
        "Time tracking",
    ),
    Scenario(
        "feature_request",
        "question",
        4.0,
        ("Feature request: {feature}", "Any plans for {feature}?", "Please add {feature}"),
        (
            "We would love {feature}. Right now we do it by hand every week and it takes hours.",
            "Is {feature} on the roadmap? It would help our team of {seats} a lot.",
        ),
        (
            "Thanks for the suggestion! I've added your vote for {feature} to our product feedback board and "
            "shared your use case with the product team.",
            "It's on our roadmap for later this year. I've linked your request so you'll hear when it ships.",
        ),
        ("Thanks. Any rough timeline?",),
        ("Logged feedback for {feature}; third request this month.",),
        ("feature_request",),
    ),
    Scenario(
        "sales_renewal",
        "task",
        2.5,
        (
            "Renewal quote for next year",
            "Upgrade to {plan} for {seats} seats",
            "Discount for annual billing?",
        ),
        (
            "Our renewal is coming up. Could you send a quote for {seats} seats on the annual plan?",
            "We are growing and want to move to {plan}. What would it cost for {seats} seats?",
        ),
        (
            "Happy to help! I've attached a quote for {seats} seats on annual billing, which saves 17% compared "
            "to monthly. Your account manager will follow up to finalize it.",
            "I've forwarded your request to your account manager, who will send the quote today.",
        ),
        ("Can we get the same price as last year?", "Thanks, we'll review it internally."),
        ("Expansion opportunity: +{seats} seats. Looped in the CSM.",),
        ("renewal", "sales"),
    ),
    Scenario(
        "sales_renewal",
        "question",
        1.5,
        ("Cancel our subscription", "Downgrade from {plan} to {lower_plan}", "Pause our account"),
        (
            "We'd like to downgrade to {lower_plan} at the end of this term; budgets are tight this year.",
            "Please cancel our subscription. We are moving to another tool.",
        ),
        (
            "Sorry to see this. I've scheduled the change for the end of your current term, so nothing changes "
            "until then. Could you share what made you decide? It helps us improve.",
            "Before you go: we can offer 3 months at 50% while you evaluate. If you still want to cancel, I'll "
            "process it right away.",
        ),
        ("We'll take the offer, thanks.", "Please go ahead with the cancellation."),
        ("Churn risk flagged to the CSM.",),
        ("churn_risk", "cancellation"),
    ),
)

INCIDENT_SUBJECTS = (
    "Brightline is down?",
    "Can't load anything",
    "Error 502 everywhere",
    "Site not loading",
    "Is there an outage?",
    "Timers stopped working",
)
INCIDENT_DETAILS = (
    "Nothing loads for me or my team, we get {error}.",
    "Since about half an hour ago the app is unusable. Is something going on?",
    "We can't start timers or open projects. Please advise.",
)
INCIDENT_REPLIES = (
    "We had a service disruption affecting the web app between {start} and {end} UTC; it is resolved now. "
    "We're sorry for the trouble; our status page has the full incident report.",
)

_SLOT = re.compile(r"\{(\w+)\}")


def fill(template: str, generator: random.Random, extra: dict[str, str] | None = None) -> str:
    """The template with every ``{slot}`` filled from the vocabulary (or ``extra``)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if extra is not None and name in extra:
            return extra[name]
        if name == "product":
            return PRODUCT
        if name == "first_name_alt":
            return generator.choice(FIRST_NAMES)
        return generator.choice(VOCABULARY[name])

    return _SLOT.sub(replace, template)
