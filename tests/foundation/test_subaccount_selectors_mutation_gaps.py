"""subaccounts/selectors.py, read directly: what each list holds, in which order, and nothing of another's."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from people.models import User
from subaccounts.models import Membership
from subaccounts.selectors import (
    membership_for_member,
    subaccount_account_admins,
    subaccount_memberships,
    subaccounts_for_agency_staff,
    subaccounts_for_member,
)
from tests.factories import MembershipFactory, SubAccountFactory, UserFactory


def _selects(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]


def test_agency_staff_see_every_subaccount_by_name_with_its_account_admin_count(world, db):
    with tenant_context(world.a.agency):
        # given a client created after the world's, but first by name, with two admins and a user
        early = SubAccountFactory(name="Aardvark Ltd")
        for email in ("z-admin@aardvark.test", "a-admin@aardvark.test"):
            MembershipFactory(subaccount=early, role=Membership.Role.ACCOUNT_ADMIN, user__email=email)
        MembershipFactory(subaccount=early, role=Membership.Role.ACCOUNT_USER)
        twin = SubAccountFactory(name="Aardvark Ltd")  # same name: the older one first

        rows = list(subaccounts_for_agency_staff(user=world.a.agency_user))

        assert [(s.pk, s.account_admin_count) for s in rows] == [
            (early.pk, 2), (twin.pk, 0), (world.a.subaccounts[0].pk, 1), (world.a.subaccounts[1].pk, 1)]
        assert not subaccounts_for_agency_staff(user=world.a.account_admins[0]).exists()
    with tenant_context(world.b.agency):
        assert [s.name for s in subaccounts_for_agency_staff(user=world.b.admin)] == [
            "Bravo Agency client 1", "Bravo Agency client 2"]


def test_a_member_sees_their_subaccounts_by_name(world, db):
    with tenant_context(world.a.agency):
        person = world.a.account_users[1]
        zed, able = SubAccountFactory(name="Zed"), SubAccountFactory(name="Able")
        twin = SubAccountFactory(name="Able")
        for subaccount in (zed, twin, able):
            MembershipFactory(subaccount=subaccount, user=person)

        assert [s.pk for s in subaccounts_for_member(user=person)] == [
            able.pk, twin.pk, world.a.subaccounts[1].pk, zed.pk]


def test_memberships_list_admins_first_then_by_email_with_their_users(world, db):
    with tenant_context(world.a.agency):
        subaccount = SubAccountFactory(name="Ordered")
        for email, role in (("b-user@o.test", Membership.Role.ACCOUNT_USER),
                            ("c-admin@o.test", Membership.Role.ACCOUNT_ADMIN),
                            ("a-user@o.test", Membership.Role.ACCOUNT_USER),
                            ("d-admin@o.test", Membership.Role.ACCOUNT_ADMIN)):
            MembershipFactory(subaccount=subaccount, role=role, user__email=email)

        with CaptureQueriesContext(connection) as queries:  # the users come with the memberships
            listed = [(m.role, m.user.email) for m in subaccount_memberships(subaccount=subaccount)]
        assert len(_selects(queries)) == 1

        assert listed == [("account_admin", "c-admin@o.test"), ("account_admin", "d-admin@o.test"),
                          ("account_user", "a-user@o.test"), ("account_user", "b-user@o.test")]


def test_account_admins_are_the_active_admins_of_that_subaccount_by_email(world, db):
    with tenant_context(world.a.agency):
        subaccount = world.a.subaccounts[0]
        later = MembershipFactory(subaccount=subaccount, role=Membership.Role.ACCOUNT_ADMIN,
                                  user__email="aaa-first@alpha-client.test").user
        gone = MembershipFactory(subaccount=subaccount, role=Membership.Role.ACCOUNT_ADMIN,
                                 user__email="gone@alpha-client.test").user
        User.objects.filter(pk=gone.pk).update(is_active=False)

        assert list(subaccount_account_admins(subaccount=subaccount)) == [later, world.a.account_admins[0]]


def test_membership_for_member_comes_with_its_subaccount(world, db):
    with tenant_context(world.a.agency):
        user = UserFactory()
        MembershipFactory(subaccount=world.a.subaccounts[1], user=user)
        with CaptureQueriesContext(connection) as queries:
            assert membership_for_member(user=user, subaccount_id=world.a.subaccounts[1].pk).subaccount.name == (
                "Alpha Agency client 2")
        assert len(_selects(queries)) == 1


def test_lists_of_subaccounts_break_name_ties_by_age_in_sql(world, db):
    # Rows of one name come back in whatever order PostgreSQL reads them unless the query names a tie-breaker, so
    # a test of the rows alone may pass by luck: the query itself must say it.
    table = '"subaccounts_subaccount"'
    with tenant_context(world.a.agency):
        for read in (lambda: subaccounts_for_member(user=world.a.account_users[0]),
                     lambda: subaccounts_for_agency_staff(user=world.a.admin)):
            with CaptureQueriesContext(connection) as queries:
                list(read())
            [select] = _selects(queries)
            assert select.rstrip().endswith(f'ORDER BY {table}."name" ASC, {table}."id" ASC')
