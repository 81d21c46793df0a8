# spotyard: join the stack's ECS cluster. Sourced by bootstrap.sh (its `log`, /etc/spotyard/env)
# on a fleet that hosts spotyard:services (SPOTYARD_ECS_CLUSTER set). cloud-init runs the user
# data before the ECS agent starts on the ECS-optimized AMI, which reads /etc/ecs/ecs.config when
# it starts (ECS developer guide, "Bootstrapping Amazon ECS Linux container instances to pass data").
# shellcheck shell=bash
install -d -m 0755 /etc/ecs
# ECS_ENABLE_SPOT_INSTANCE_DRAINING: on the Spot interruption notice the agent sets the instance
# DRAINING, so its tasks start elsewhere within the two minutes (ECS developer guide, "Spot
# Instance draining"). ECS_DYNAMIC_HOST_PORT_RANGE: the ports the fleet's security group opens
# between its instances for the proxy (amazon-ecs-agent README).
cat > /etc/ecs/ecs.config <<ECS_EOF
ECS_CLUSTER=${SPOTYARD_ECS_CLUSTER}
ECS_ENABLE_SPOT_INSTANCE_DRAINING=true
ECS_ENABLE_TASK_IAM_ROLE=true
ECS_DYNAMIC_HOST_PORT_RANGE=${SPOTYARD_ECS_PORT_RANGE}
ECS_EOF
# Containers in the bridge network mode must not borrow the instance role through IMDS (hop limit
# 2): the rule (spotyard-imds-block) is applied now and at every boot before Docker starts.
systemctl enable --now spotyard-imds-block.service
log "ECS cluster ${SPOTYARD_ECS_CLUSTER}, Spot draining on"
