/**
 * `createSwitchboard({hub})`: an AI SDK provider whose models are Switchboard purposes (or model
 * ids allowed for a purpose), governed by the hub.
 */
import { type LanguageModelV4, NoSuchModelError, type ProviderV4 } from "@ai-sdk/provider";
import type { Actor, GroupInfo, Hub } from "@switchboard/hub";
import { toAISDKError } from "./errors.ts";
import { type ModelTarget, SwitchboardLanguageModel } from "./language-model.ts";

const PURPOSE_PREFIX = "purpose:";

export interface SwitchboardProviderSettings {
  hub: Hub;
  /** Who is asking, unless a model's settings or a call's `providerOptions.switchboard.actor` say otherwise. */
  actor?: Actor | undefined;
  /** The purpose a plain model id is used for: the model must be allowed for it. */
  purpose?: string | undefined;
}

export interface SwitchboardModelSettings {
  /** Who is asking through this model (wins over the provider's actor). */
  actor?: Actor | undefined;
}

export interface SwitchboardProvider extends ProviderV4 {
  /** A model by purpose (`purpose:enrichments`) or by id (allowed for the provider's purpose). */
  (id: string, settings?: SwitchboardModelSettings): LanguageModelV4;
  languageModel(id: string, settings?: SwitchboardModelSettings): LanguageModelV4;
  /**
   * Runs `body` with a model whose calls all belong to one hub group: one reservation before the
   * first call and one settlement when `body` has finished, e.g. for a whole `generateText` tool
   * loop. Resolves to what `body` returns, once every response in the group has completed.
   */
  group<T>(
    id: string,
    body: (model: LanguageModelV4, group: GroupInfo) => Promise<T>,
    settings?: SwitchboardModelSettings,
  ): Promise<T>;
}

export function createSwitchboard(settings: SwitchboardProviderSettings): SwitchboardProvider {
  const { hub } = settings;
  const targetOf = (id: string): ModelTarget => {
    if (!id.startsWith(PURPOSE_PREFIX)) return { purpose: settings.purpose, model: id };
    const purpose = id.slice(PURPOSE_PREFIX.length);
    if (purpose === "") {
      throw new NoSuchModelError({
        modelId: id,
        modelType: "languageModel",
        message: `"${id}" names no purpose: use purpose:<name>, e.g. purpose:enrichments.`,
      });
    }
    return { purpose, model: undefined };
  };
  const languageModel = (id: string, modelSettings: SwitchboardModelSettings = {}): LanguageModelV4 =>
    new SwitchboardLanguageModel({
      hub,
      id,
      target: targetOf(id),
      actor: modelSettings.actor ?? settings.actor,
    });

  const provider = (id: string, modelSettings?: SwitchboardModelSettings) => languageModel(id, modelSettings);
  provider.specificationVersion = "v4" as const;
  provider.languageModel = languageModel;
  provider.group = async <T>(
    id: string,
    body: (model: LanguageModelV4, group: GroupInfo) => Promise<T>,
    modelSettings: SwitchboardModelSettings = {},
  ): Promise<T> => {
    const target = targetOf(id);
    const actor = modelSettings.actor ?? settings.actor;
    let entered = false;
    try {
      return await hub.group({ purpose: target.purpose, model: target.model, actor }, (model, info) => {
        entered = true;
        return body(new SwitchboardLanguageModel({ hub, id, target, actor, group: { model, info } }), info);
      });
    } catch (error) {
      // Only the group's own refusal (no model, not allowed) is Switchboard's to translate.
      throw entered ? error : toAISDKError(error, id, undefined);
    }
  };
  provider.embeddingModel = (modelId: string): never => {
    throw new NoSuchModelError({
      modelId,
      modelType: "embeddingModel",
      message: "Switchboard serves language models only.",
    });
  };
  provider.imageModel = (modelId: string): never => {
    throw new NoSuchModelError({
      modelId,
      modelType: "imageModel",
      message: "Switchboard serves language models only.",
    });
  };
  return provider;
}
