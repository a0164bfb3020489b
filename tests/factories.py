"""Factories for rows inside an agency's schema (use them within `tenant_context`)."""

import factory

from people.models import User
from subaccounts.models import Membership, SubAccount

PASSWORD = "correct-horse-battery-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    full_name = factory.Faker("name")
    role = User.Role.CLIENT
    password = factory.django.Password(PASSWORD)


class SubAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubAccount

    name = factory.Sequence(lambda n: f"Client {n}")
    contact_email = factory.LazyAttribute(lambda o: f"office@{o.name.lower().replace(' ', '')}.test")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    subaccount = factory.SubFactory(SubAccountFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.ACCOUNT_USER
