from scanner.pii import find_pii, iban_ok, luhn_ok, redact


def kinds(text):
    return [(it.type, it.value) for it in find_pii(text)]


def test_email_and_person_masked_like_the_issue_example():
    text = "Hi, this is Mike Green, my email is mike.green@gmail.com"
    items = find_pii(text)
    assert [(i.type, i.value) for i in items] == [("person", "Mike Green"), ("email", "mike.green@gmail.com")]
    assert redact(text, items) == "Hi, this is M*** G***, my email is m***@gmail.com"


def test_loosely_spaced_lowercase_inversion_output():
    assert ("email", "mike.green@gmail.com") in kinds("my email is mike . green @ gmail . com")
    assert ("person", "john smith") in kinds("patient john smith was prescribed insulin")


def test_checksums_separate_real_numbers_from_random_digits():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB83 WEST 1234 5698 7654 32")
    assert ("credit_card", "4111 1111 1111 1111") in kinds("card 4111 1111 1111 1111 ok")
    assert not [k for k in kinds("order 4111 1111 1111 1112 shipped") if k[0] == "credit_card"]
    assert ("iban", "DE89 3704 0044 0532 0130 00") in kinds("pay to DE89 3704 0044 0532 0130 00 today")


def test_ssn_phone_ip():
    found = kinds("ssn 123-45-6789, call (555) 867-5309, host 10.0.12.7 or 2001:db8::1")
    assert ("ssn", "123-45-6789") in found
    assert ("phone", "(555) 867-5309") in found
    assert ("ip", "10.0.12.7") in found
    assert ("ip", "2001:db8::1") in found
    assert not [k for k in kinds("ssn 666-45-6789 and 999.1.1.1") if k[0] in ("ssn", "ip")]


def test_redaction_keeps_only_a_hint():
    items = find_pii("card 4111 1111 1111 1111 and 192.168.1.20")
    masked = redact("card 4111 1111 1111 1111 and 192.168.1.20", items)
    assert "4111 1111 1111" not in masked and masked.endswith("192.*.*.*")
    assert "1111" in masked
