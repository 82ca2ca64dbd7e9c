"""ACL and SCRAM admin APIs as Apache Kafka answers them without an authorizer / credentials.

Kafka always offers DescribeAcls / CreateAcls / DeleteAcls; without an authorizer its AclApis
answer SECURITY_DISABLED (describe: top level; create: each creation; delete: each filter).
DescribeUserScramCredentials over no stored credentials (ScramImage.describe): all users -> no
results, a named user -> RESOURCE_NOT_FOUND, a user named twice -> DUPLICATE_RESOURCE. Clients
must get these answers, not "not supported by broker" nor a dropped connection.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

pytestmark = pytest.mark.timeout(90)

BINDING = AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:bob",
                     "*", AclOperation.READ, AclPermissionType.ALLOW)
MATCH_ALL = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)


@pytest.fixture(scope="module")
def admin(kafka_broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_broker.bootstrap})


def _error_of(future) -> KafkaError:
    with pytest.raises(KafkaException) as info:
        future.result(15)
    return info.value.args[0]


def test_confluent_describe_acls_is_answered(admin):
    """librdkafka (2.12) drops DescribeAcls' top-level error code: against Kafka without an
    authorizer it lists no bindings; against a broker without the API it raises
    _UNSUPPORTED_FEATURE. The wire answer itself is checked with kafka-python below."""
    assert admin.describe_acls(MATCH_ALL).result(15) == []


def test_confluent_create_and_delete_acls_are_security_disabled(admin):
    created = admin.create_acls([BINDING])
    assert _error_of(created[BINDING]).code() == KafkaError.SECURITY_DISABLED
    deleted = admin.delete_acls([MATCH_ALL])
    assert _error_of(deleted[MATCH_ALL]).code() == KafkaError.SECURITY_DISABLED


def test_kafka_python_acl_apis_are_security_disabled(kafka_broker):
    from kafka.admin import (
        ACL,
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePattern,
        ResourcePatternFilter,
    )
    from kafka.admin import ResourceType as KResourceType
    from kafka.errors import SecurityDisabledError

    kadmin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap,
                              request_timeout_ms=10000)
    try:
        acl_filter = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY,
                               permission_type=ACLPermissionType.ANY,
                               resource_pattern=ResourcePatternFilter(
                                   KResourceType.TOPIC, None, ACLResourcePatternType.ANY))
        with pytest.raises(SecurityDisabledError):
            kadmin.describe_acls(acl_filter)
        acl = ACL(principal="User:bob", host="*", operation=ACLOperation.READ,
                  permission_type=ACLPermissionType.ALLOW,
                  resource_pattern=ResourcePattern(KResourceType.TOPIC, "orders"))
        created = kadmin.create_acls([acl])
        assert created["succeeded"] == []
        assert created["failed"] == [SecurityDisabledError]
        deleted = kadmin.delete_acls([acl_filter])
        assert [(matched, error) for _f, matched, error in deleted] == [([], SecurityDisabledError)]
    finally:
        kadmin.close()


def test_confluent_describe_user_scram_credentials_without_credentials(admin):
    assert admin.describe_user_scram_credentials().result(15) == {}
    described = admin.describe_user_scram_credentials(["alice"])
    error = _error_of(described["alice"])
    assert error.code() == KafkaError.RESOURCE_NOT_FOUND, error


def test_kafka_python_describe_user_scram_credentials(kafka_broker):
    from kafka.admin import KafkaAdminClient

    kadmin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap,
                              request_timeout_ms=10000)
    try:
        everyone = kadmin.describe_user_scram_credentials()
        named = kadmin.describe_user_scram_credentials(["alice", "bob", "bob"])
    finally:
        kadmin.close()
    assert everyone == {}
    assert named == {
        "alice": {"error": "attemptToDescribeUserThatDoesNotExist: alice",
                  "credential_infos": []},
        "bob": {"error": "Cannot describe SCRAM credentials for the same user twice in a "
                         "single request: bob", "credential_infos": []}}
